{ a, b ? 2, ... }@args:
let inherit (args) c; d = a - b * 2; in
rec { x = if d < 0 then -d else d; inherit c; y = x.z or [ 1 "s" ]; w = !(a >= b) -> true; } // { v = args ? c; }
