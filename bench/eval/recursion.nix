# Evaluation workload: deep recursion. A non-tail recursive sum to a depth that CppNix 2.8
# evaluates on an 8 MiB stack (its limit is about 73,000 frames of this function), repeated
# over several depths; list and attribute-set recursion of the same depth too.
let
  depth = 50000;
  sumTo = k: if k == 0 then 0 else k + sumTo (k - 1);
  # Length of a linked list of nested sets, built and walked recursively.
  build = k: if k == 0 then null else { next = build (k - 1); };
  walk = l: if l == null then 0 else 1 + walk l.next;
  depths = builtins.genList (i: depth - i * 1000) 40;
in
{
  sums = builtins.foldl' (a: d: a + sumTo d) 0 depths;
  walked = walk (build depth);
}
