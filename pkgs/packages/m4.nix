{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "m4";
  version = "1.4.19";
  src = fetchurl {
    url = "https://ftp.gnu.org/gnu/m4/m4-1.4.19.tar.xz";
    sha256 = "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96";
  };
  outputs = [ "out" "man" "doc" ];
  configureFlags = "--disable-nls";
  meta = {
    description = "GNU's macro processor";
    homepage = "https://www.gnu.org/software/m4/";
    license = "GPL-3.0-or-later";
  };
}
