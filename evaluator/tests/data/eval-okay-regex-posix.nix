# Match boundaries follow POSIX (leftmost, then longest) and C++'s iteration of empty matches.
with builtins; [
  (split "a|ab" "xabc")
  (split "a*" "baaac")
  (split "" "abc")
  (split "(,)" "a,b,")
  (match "(a|ab)(c|bcd)" "abcd")
]
