{ stdenv, fetchurl }:
stdenv.mkDerivation {
  pname = "hello";
  version = "2.10";
  src = fetchurl {
    url = "https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz";
    sha256 = "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b";
  };
  outputs = [ "out" "man" "doc" ];
  configureFlags = "--disable-nls";
  meta = {
    description = "A program that produces a familiar, friendly greeting";
    homepage = "https://www.gnu.org/software/hello/";
    license = "GPL-3.0-or-later";
  };
}
