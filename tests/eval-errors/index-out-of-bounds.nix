let xs = [ 1 2 ];
in
builtins.elemAt xs 5
