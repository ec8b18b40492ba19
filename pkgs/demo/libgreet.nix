# The demo's library, built from the sources beside this file.
{ stdenv }:
stdenv.mkDerivation {
  pname = "libgreet";
  version = "1.0";
  src = ./libgreet;
  outputs = [ "out" "dev" ];
  installFlags = "PREFIX=$out";
  meta = {
    description = "Greetings as a shared library (kiln's in-tree demo)";
    license = "MIT";
  };
}
