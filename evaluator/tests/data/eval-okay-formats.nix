with builtins; [
  (toJSON { s = "q\"\\\n"; i = -3; f = 0.25; l = [ true null ]; e = { }; })
  (fromJSON ''{"a": {"b": [1, 2.5e2, "x", false, null]}, "u": "\u00e9"}'')
  (fromTOML ''
    title = "t"
    [owner]
    name = "n"
    [[items]]
    id = 1
    [[items]]
    id = 2
  '')
  (toXML { a = [ 1 "s" ]; })
  (toJSON (fromJSON "[1.5, 100, -0.5]"))
]
