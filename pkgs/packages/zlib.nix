{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "zlib";
  version = "1.2.13";
  src = fetchurl {
    # Debian's repack of the upstream release, found by its hash in a mirror.
    url = "https://deb.debian.org/debian/pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2";
    name = "zlib-1.2.13.dfsg.tar.bz2";
    sha256 = "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1";
  };
  outputs = [ "out" "dev" "man" ];
  meta = {
    description = "Lossless data compression library";
    homepage = "https://zlib.net/";
    license = "Zlib";
  };
}
