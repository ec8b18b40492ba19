# Evaluation workload: large attribute sets. listToAttrs of tens of thousands of names, merges
# with `//`, a recursive update written in Nix, mapAttrs, attrNames/attrValues, removeAttrs,
# `?` tests and `.` lookups of every name; the result is a few counts and sums.
let
  n = 20000;
  mod = a: b: a - (a / b) * b;
  names = builtins.genList (i: "attr${toString i}") n;
  base = builtins.listToAttrs (builtins.genList (i: { name = "attr${toString i}"; value = i; }) n);
  # Every third name again with a new value, and some new names.
  other = builtins.listToAttrs (builtins.genList (i: { name = "attr${toString (i * 3)}"; value = { v = i; }; }) (n / 2));
  merged = base // other;
  # Recursive update: where both sides hold sets, merge them recursively, else take the right.
  recursiveUpdate = l: r:
    l // builtins.mapAttrs (name: rv:
      if l ? ${name} && builtins.isAttrs l.${name} && builtins.isAttrs rv
      then recursiveUpdate l.${name} rv else rv) r;
  nested = builtins.listToAttrs (builtins.genList (i: {
    name = "group${toString (mod i 100)}";
    value = { "k${toString i}" = i; };
  }) 100);
  deep = builtins.foldl' (acc: i: recursiveUpdate acc { "group${toString (mod i 100)}" = { "k${toString i}" = i; }; })
    nested (builtins.genList (i: i) 2000);
  # Many small merges on top of one another.
  layered = builtins.foldl' (acc: i: acc // { "layer${toString (mod i 50)}" = i; }) base (builtins.genList (i: i) 2000);
  doubled = builtins.mapAttrs (name: v: if builtins.isInt v then v * 2 else v.v) merged;
  sumValues = builtins.foldl' (a: v: a + v) 0 (builtins.attrValues doubled);
  lookups = builtins.foldl' (a: name: a + (if merged ? ${name} then 1 else 0) + (if layered ? ${name} then base.${name} else 0)) 0 names;
  removed = builtins.removeAttrs merged (builtins.genList (i: "attr${toString (i * 2)}") (n / 2));
in
{
  merged = builtins.length (builtins.attrNames merged);
  inherit sumValues lookups;
  removed = builtins.length (builtins.attrNames removed);
  deepGroups = builtins.length (builtins.attrNames deep);
  deepKeys = builtins.foldl' (a: g: a + builtins.length (builtins.attrNames g)) 0 (builtins.attrValues deep);
  layered = builtins.length (builtins.attrNames layered);
  intersect = builtins.length (builtins.attrNames (builtins.intersectAttrs other base));
  catAttrs = builtins.length (builtins.catAttrs "v" (builtins.attrValues other));
}
