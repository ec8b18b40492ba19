{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "sed";
  version = "4.9";
  src = fetchurl {
    url = "https://ftp.gnu.org/gnu/sed/sed-4.9.tar.xz";
    sha256 = "6e226b732e1cd739464ad6862bd1a1aba42d7982922da7a53519631d24975181";
  };
  outputs = [ "out" "man" "doc" ];
  configureFlags = "--disable-nls";
  meta = {
    description = "The GNU stream editor";
    homepage = "https://www.gnu.org/software/sed/";
    license = "GPL-3.0-or-later";
  };
}
