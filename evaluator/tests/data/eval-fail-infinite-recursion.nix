let x = y; y = x; in x
