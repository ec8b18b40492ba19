assert 1 + 1 == 3;
"unreachable"
