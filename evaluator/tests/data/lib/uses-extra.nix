extra * 2
