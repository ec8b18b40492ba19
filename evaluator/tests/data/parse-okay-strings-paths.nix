b: x: f: [ "a${b}c" ./rel/${x} <nixpkgs> (f 1 2) (x |> f) __curPos ]
