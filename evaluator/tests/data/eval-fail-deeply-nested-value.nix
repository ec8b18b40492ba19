let
  chain = n: if n == 0 then null else { next = chain (n - 1); };
in
chain 1000000
