{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "patch";
  version = "2.7.6";
  src = fetchurl {
    url = "https://ftp.gnu.org/gnu/patch/patch-2.7.6.tar.xz";
    sha256 = "ac610bda97abe0d9f6b7c963255a11dcb196c25e337c61f94e4778d632f1d8fd";
  };
  outputs = [ "out" "man" ];
  meta = {
    description = "Applies diff files to originals";
    homepage = "https://savannah.gnu.org/projects/patch";
    license = "GPL-3.0-or-later";
  };
}
