# The demo's program, linked against `libgreet` from the store.
{ stdenv, libgreet }:
stdenv.mkDerivation {
  pname = "greet";
  version = "1.0";
  src = ./greet;
  buildInputs = [ libgreet ];
  installFlags = "PREFIX=$out";
  meta = {
    description = "Prints a greeting made by libgreet (kiln's in-tree demo)";
    license = "MIT";
  };
}
