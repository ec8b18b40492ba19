# Evaluation workload: long lists with folds. genList, map, filter, foldl', concatLists,
# elemAt, length, all/any and partition over lists of a few hundred thousand integers.
let
  n = 200000;
  mod = a: b: a - (a / b) * b;
  xs = builtins.genList (i: i * 7 + 3) n;
  squares = map (x: mod (x * x) 1000) xs;
  odd = builtins.filter (x: mod x 2 == 1) squares;
  sum = builtins.foldl' (a: x: a + x) 0;
  # Pairs of neighbours by index, then flattened again.
  pairs = builtins.genList (i: [ (builtins.elemAt xs i) (builtins.elemAt squares (n - 1 - i)) ]) n;
  flat = builtins.concatLists pairs;
  parts = builtins.partition (x: x < 500) squares;
  # A running maximum as a fold with a set as accumulator.
  stats = builtins.foldl' (s: x:
    let max = if x > s.max then x else s.max; count = s.count + 1;
    in builtins.seq max (builtins.seq count { inherit max count; })) { max = 0; count = 0; } squares;
in
{
  sum = sum xs;
  oddCount = builtins.length odd;
  oddSum = sum odd;
  flatSum = sum flat;
  flatLength = builtins.length flat;
  right = builtins.length parts.right;
  wrong = builtins.length parts.wrong;
  allSmall = builtins.all (x: x < 1000) squares;
  anyBig = builtins.any (x: x > 999) squares;
  inherit stats;
}
