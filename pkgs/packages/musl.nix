# musl, so that programs link against a C library from the store, not the host's. Its headers,
# static library and `musl-gcc` go to `dev`; `out` holds only the dynamic loader, which is the
# C library itself, so a program's run-time closure is its own output and musl's `out`.
{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "musl";
  version = "1.2.3";
  src = fetchurl {
    url = "https://musl.libc.org/releases/musl-1.2.3.tar.gz";
    sha256 = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4";
  };
  outputs = [ "out" "dev" ];
  # Nothing built against it looks in the host's `/lib` and `/usr`: libraries not named by
  # path are looked up in musl's own folder, and the fallback program search path (no `PATH`)
  # and time zone folder are musl's too.
  postPatch = ''
    sed -i "s|\"/lib:/usr/local/lib:/usr/lib\"|\"$out/lib\"|" ldso/dynlink.c
    sed -i "s|\"/usr/local/bin:/bin:/usr/bin\"|\"$out/bin\"|" src/process/execvp.c
    sed -i "s|\"/bin:/usr/bin\"|\"$out/bin\"|" src/conf/confstr.c
    sed -i "s|/usr/share/zoneinfo/|$out/share/zoneinfo/|" src/time/__tz.c
  '';
  # Without `--syslibdir` its install would write the loader into the host's `/lib`.
  configurePhase = "./configure --prefix=$dev --syslibdir=$out/lib";
  postInstall = ''
    rm $out/lib/ld-musl-x86_64.so.1
    cp $dev/lib/libc.so $out/lib/ld-musl-x86_64.so.1
  '';
  meta = {
    description = "A C standard library";
    homepage = "https://musl.libc.org/";
    license = "MIT";
  };
}
