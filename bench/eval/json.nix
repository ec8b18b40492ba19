# Evaluation workload: JSON round trips. A big structure (nested sets and lists, strings with
# characters to escape, integers, booleans, null, a few floats) goes through toJSON, fromJSON
# and toJSON again; the result is the text's length, a hash of it and whether it round-trips.
let
  n = 50000;
  mod = a: b: a - (a / b) * b;
  item = i: {
    id = i;
    name = "item \"${toString i}\"\t\\ é ${toString (mod (i * 13) 17)}";
    tags = builtins.genList (j: "t${toString (mod (i + j) 9)}") (mod i 5);
    flags = { even = mod i 2 == 0; none = null; };
    nested = [ { a = i; } [ (i * 2) "x" ] ];
    ratio = if mod i 100 == 0 then 0.5 else i;
  };
  data = { items = builtins.genList item n; count = n; meta = { version = "1.0"; list = [ true false null ]; }; };
  text = builtins.toJSON data;
  back = builtins.fromJSON text;
  again = builtins.toJSON back;
in
{
  length = builtins.stringLength text;
  hash = builtins.hashString "sha256" text;
  roundTrip = again == text;
  equal = back == data;
  name = (builtins.elemAt back.items 42).name;
}
