# GNU make, built without a `make` and without `configure`: the distribution's repack ships no
# configure script, so `config.h` (beside this file) says what configure would find on Linux.
{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "make";
  version = "4.3";
  src = fetchurl {
    # Debian's repack of the upstream release, found by its hash in a mirror.
    url = "https://deb.debian.org/debian/pool/main/m/make-dfsg/make-dfsg_4.3.orig.tar.gz";
    name = "make-4.3.dfsg.tar.gz";
    sha256 = "be4c17542578824e745f83bcd2a9ba264206187247cb6a5f5df99b0a9d1f9047";
  };
  configurePhase = "cp ${./config.h} src/config.h";
  buildPhase = ''
    for f in ar arscan commands default dir expand file function getopt getopt1 guile hash \
        implicit job load loadapi main misc output read remake rule signame strcache variable \
        version vpath remote-stub posixos; do
      $CC $CFLAGS -DHAVE_CONFIG_H -DLIBDIR=\"$out/lib\" -DINCLUDEDIR=\"$out/include\" \
        -DLOCALEDIR=\"$out/share/locale\" -Isrc -Ilib -c src/$f.c -o src/$f.o
    done
    for f in concat-filename findprog-in xconcat-filename xalloc-die exitfail; do
      $CC $CFLAGS -DHAVE_CONFIG_H -Isrc -Ilib -c lib/$f.c -o lib/$f.o
    done
    $CC $LDFLAGS -o make src/*.o lib/*.o -ldl
  '';
  # The repack leaves the manual out, so only the program is installed.
  installPhase = ''
    mkdir -p $out/bin
    cp make $out/bin/make
  '';
  meta = {
    description = "A program that controls the generation of executables from sources";
    homepage = "https://www.gnu.org/software/make/";
    license = "GPL-3.0-or-later";
  };
}
