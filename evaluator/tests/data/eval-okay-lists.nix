with builtins; [
  (sort lessThan [ 3 1 2 ])
  (sort (a: b: a.k < b.k) [ { k = 2; v = "a"; } { k = 1; v = "b"; } { k = 2; v = "c"; } ])
  (genList (i: i * 2) 4)
  (foldl' (a: b: a + b) 0 (genList (i: i) 100))
  (elemAt [ "a" "b" "c" ] 2)
  (concatLists [ [ 1 ] [ ] [ 2 3 ] ])
  (partition (x: x > 2) [ 1 2 3 4 ])
  (groupBy (s: substring 0 1 s) [ "apple" "avocado" "banana" ])
  (filter isInt [ 1 "a" 2 null ])
  (all isInt [ ]) (any isInt [ ])
  ([ 1 2 ] < [ 1 3 ]) ([ 1 2 ] == [ 1 2 ])
  (length (map (x: throw "lazy") [ 1 2 3 ]))
]
