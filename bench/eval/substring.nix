# Evaluation workload: a substring loop over one large string, reading it one character at a
# time. CppNix 2.8 copies the whole string for each builtins.substring call (quadratic); the
# size keeps it under a few seconds there.
let
  size = 100000;
  mod = a: b: a - (a / b) * b;
  text = builtins.concatStringsSep "" (builtins.genList (i: builtins.elemAt [ "a" "b" "c" "d" "e" ] (mod (i * 7) 5)) size);
  count = c: builtins.foldl' (acc: i: if builtins.substring i 1 text == c then acc + 1 else acc) 0
    (builtins.genList (i: i) (builtins.stringLength text));
in
{
  length = builtins.stringLength text;
  a = count "a";
  window = builtins.substring 1000 20 text;
}
