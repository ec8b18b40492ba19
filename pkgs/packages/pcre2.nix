{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "pcre2";
  version = "10.42";
  src = fetchurl {
    url = "https://github.com/PCRE2Project/pcre2/releases/download/pcre2-10.42/pcre2-10.42.tar.gz";
    sha256 = "c33b418e3b936ee3153de2c61cc638e7e4fe3156022a5c77d0711bcbb9d64f1f";
  };
  outputs = [ "out" "dev" "man" "doc" ];
  # `pcre2-config` is for building against pcre2: it belongs with the headers.
  postInstall = ''
    mkdir -p $dev/bin
    mv $out/bin/pcre2-config $dev/bin/
    sed -i "s|^includedir=.*|includedir=$dev/include|" $dev/bin/pcre2-config
  '';
  meta = {
    description = "Perl-compatible regular expressions";
    homepage = "https://github.com/PCRE2Project/pcre2";
    license = "BSD-3-Clause";
  };
}
