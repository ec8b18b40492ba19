# Lua has a plain Makefile: no configure.
{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "lua";
  version = "5.4.4";
  src = fetchurl {
    url = "https://www.lua.org/ftp/lua-5.4.4.tar.gz";
    sha256 = "164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61";
  };
  outputs = [ "out" "dev" "man" ];
  # Modules are looked up under the package's own prefix, not the host's `/usr/local`.
  postPatch = ''
    sed -i "s|\"/usr/local/\"|\"$out/\"|" src/luaconf.h
  '';
  buildPhase = ''
    make -j"$NIX_BUILD_CORES" linux CC="$CC -std=gnu99" MYCFLAGS="$CFLAGS" MYLDFLAGS="$LDFLAGS"
  '';
  installFlags = "INSTALL_TOP=$out";
  meta = {
    description = "A powerful, light-weight programming language";
    homepage = "https://www.lua.org/";
    license = "MIT";
  };
}
