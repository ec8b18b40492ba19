# Evaluation workload: builtins.sort with comparators written in Nix, on a list of pseudo-random
# integers (a linear congruential generator) and on a list of records sorted by two keys.
let
  n = 60000;
  mod = a: b: a - (a / b) * b;
  rand = builtins.genList (i: mod (i * 1103515245 + 12345) 2147483648) n;
  ints = builtins.sort (a: b: a < b) rand;
  desc = builtins.sort (a: b: a > b) rand;
  records = builtins.genList (i: { key = mod (i * 7919) 101; id = i; name = "r${toString (mod (i * 31) 1000)}"; }) (n / 2);
  byKeys = builtins.sort (a: b: if a.key != b.key then a.key < b.key else a.name < b.name || (a.name == b.name && a.id < b.id)) records;
  strings = builtins.sort builtins.lessThan (map (r: r.name) records);
  at = builtins.elemAt;
  isSorted = xs: builtins.foldl' (s: x: let ok = s.ok && s.prev <= x; in builtins.seq ok { inherit ok; prev = x; })
    { ok = true; prev = at xs 0; } xs;
in
{
  first = at ints 0;
  last = at ints (n - 1);
  middle = at ints (n / 2);
  descFirst = at desc 0;
  sorted = (isSorted ints).ok;
  records = map (r: r.id) [ (at byKeys 0) (at byKeys 1) (at byKeys (n / 2 - 1)) ];
  strings = [ (at strings 0) (at strings (n / 2 - 1)) ];
}
