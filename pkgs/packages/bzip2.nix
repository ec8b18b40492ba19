# bzip2 has a plain Makefile: no configure.
{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "bzip2";
  version = "1.0.8";
  src = fetchurl {
    url = "https://sourceware.org/pub/bzip2/bzip2-1.0.8.tar.gz";
    sha256 = "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269";
  };
  outputs = [ "out" "dev" "man" ];
  buildPhase = ''make -j"$NIX_BUILD_CORES" CC="$CC" CFLAGS="$CFLAGS -D_FILE_OFFSET_BITS=64"'';
  installFlags = "PREFIX=$out";
  # Its install links `bzcmp` and friends by absolute path; relative links are enough.
  postInstall = ''
    cd $out/bin
    for l in bzcmp bzegrep bzfgrep bzless; do
      if [ -L $l ]; then ln -sf "$(basename "$(readlink $l)")" $l; fi
    done
    cd - > /dev/null
  '';
  meta = {
    description = "A block-sorting file compressor";
    homepage = "https://sourceware.org/bzip2/";
    license = "bzip2-1.0.6";
  };
}
