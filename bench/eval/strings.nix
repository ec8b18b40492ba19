# Evaluation workload: building strings and regular expressions. Interpolation and `+`,
# concatStringsSep of long lists, replaceStrings over a long string, builtins.match on many
# short strings and builtins.split of a long one; hashes of the results keep the output small.
let
  n = 50000;
  mod = a: b: a - (a / b) * b;
  words = builtins.genList (i: "word${toString i}-${toString (mod (i * 7919) 1000)}") n;
  joined = builtins.concatStringsSep " " words;
  csv = builtins.concatStringsSep "\n" (builtins.genList (i: "${toString i},name-${toString i},${toString (mod (i * 31) 97)}.5") n);
  # Concatenation in a fold over a short list (quadratic, so kept small).
  folded = builtins.foldl' (acc: w: acc + w + ";") "" (builtins.genList (i: builtins.elemAt words i) 2000);
  replaced = builtins.replaceStrings [ "word" "-" "9" ] [ "W" "_" "nine" ] joined;
  # Regular expressions: match each word, split the long strings.
  matched = map (w: builtins.match "word([0-9]+)-([0-9]*)" w) words;
  matchSum = builtins.foldl' (a: m: a + builtins.stringLength (builtins.elemAt m 1)) 0 matched;
  fields = builtins.split "," csv;
  lines = builtins.filter builtins.isString (builtins.split "\n" csv);
  decimals = builtins.filter (x: builtins.isList x) (builtins.split "([0-9]+)\\.5" csv);
  hash = builtins.hashString "sha256";
in
{
  joined = builtins.stringLength joined;
  replaced = hash replaced;
  folded = hash folded;
  inherit matchSum;
  fields = builtins.length fields;
  lines = builtins.length lines;
  decimals = builtins.length decimals;
  interpolated = hash (builtins.concatStringsSep "" (map (w: "<${w}|${toString (builtins.stringLength w)}>") words));
}
