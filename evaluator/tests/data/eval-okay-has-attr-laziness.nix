[
  ({ a = throw "not evaluated"; } ? a)
  ({ a.b = throw "not evaluated"; } ? a.b)
  ({ a = 1; } ? a.b)
  (1 ? a)
]
