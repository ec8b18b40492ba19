{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "xz";
  version = "5.4.1";
  src = fetchurl {
    url = "https://tukaani.org/xz/xz-5.4.1.tar.xz";
    sha256 = "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5";
  };
  outputs = [ "out" "dev" "man" "doc" ];
  configureFlags = "--disable-nls --disable-static";
  meta = {
    description = "Compression with the LZMA2 algorithm";
    homepage = "https://tukaani.org/xz/";
    license = "0BSD AND GPL-2.0-or-later AND LGPL-2.1-or-later";
  };
}
