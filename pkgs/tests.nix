# A test for each package that runs what was built: `kiln build ./pkgs -A tests.NAME`, or all of
# them with `-A tests`. A test passes when its script exits 0.
{ pkgs }:
let
  # Runs `script` with the programs, headers and libraries of `inputs` at hand.
  check = stdenv: name: inputs: script:
    stdenv.runCommand "test-${name}" { buildInputs = inputs; } ''
      ${script}
      echo passed > $out
    '';
  # Stage 1 tools are tested with the stage-1 environment, the rest with the final one.
  check1 = check pkgs.stdenv0;
  check2 = check pkgs.stdenv;
in
{
  make = check1 "make" [ pkgs.make ] ''
    make --version | head -n 1 | grep -q 'GNU Make 4.3'
    printf 'all: a b\na b:\n\t@echo made $@\n' > Makefile
    test "$(make -s -j2 | sort | tr '\n' ' ')" = "made a made b "
  '';
  sed = check1 "sed" [ pkgs.sed ] ''
    test "$(echo 'hello world' | sed 's/hello/goodbye/')" = "goodbye world"
  '';
  patch = check1 "patch" [ pkgs.patch ] ''
    printf 'one\ntwo\n' > file
    printf -- '--- a/file\n+++ b/file\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n' > fix.diff
    patch -p1 < fix.diff
    test "$(cat file)" = "$(printf 'one\nthree')"
  '';
  m4 = check1 "m4" [ pkgs.m4 ] ''
    printf 'define(greeting, hello)greeting\n' > in.m4
    test "$(m4 in.m4)" = "hello"
  '';
  xz = check1 "xz" [ pkgs.xz ] ''
    seq 1 20000 > data
    xz -9 < data > data.xz
    test "$(wc -c < data.xz)" -lt "$(wc -c < data)"
    xz -d < data.xz | cmp - data
  '';
  bzip2 = check1 "bzip2" [ pkgs.bzip2 ] ''
    seq 1 20000 > data
    bzip2 < data > data.bz2
    bzip2 -d < data.bz2 | cmp - data
  '';
  musl = check2 "musl" [ ] ''
    printf '#include <stdio.h>\nint main(void) { puts("linked against musl"); return 0; }\n' > t.c
    musl-gcc -o t t.c
    test "$(./t)" = "linked against musl"
  '';
  zlib = check2 "zlib" [ pkgs.zlib ] ''
    cat > t.c <<'C'
    #include <string.h>
    #include <zlib.h>
    int main(void) {
        const char *text = "kiln kiln kiln kiln kiln kiln kiln kiln";
        unsigned char packed[128], unpacked[128];
        uLongf n = sizeof packed, m = sizeof unpacked;
        if (compress(packed, &n, (const Bytef *) text, strlen(text) + 1) != Z_OK) return 1;
        if (n >= strlen(text)) return 2;
        if (uncompress(unpacked, &m, packed, n) != Z_OK) return 3;
        return strcmp((char *) unpacked, text) != 0;
    }
    C
    $CC $CPPFLAGS -o t t.c $LDFLAGS -lz
    ./t
  '';
  pcre2 = check2 "pcre2" [ pkgs.pcre2 ] ''
    test "$(echo 'version 10.42 of pcre2' | pcre2grep -o '[0-9]+\.[0-9]+')" = "10.42"
  '';
  lua = check2 "lua" [ pkgs.lua ] ''
    test "$(lua -e 'print(2^10, string.rep("ab", 3))')" = "$(printf '1024.0\tababab')"
  '';
  hello = check2 "hello" [ pkgs.hello ] ''
    hello --version | head -n 1 | grep -q 'hello (GNU Hello) 2.10'
    test "$(hello)" = "Hello, world!"
  '';
  demo = check pkgs.stdenv0 "demo" [ pkgs.demo ] ''
    test "$(greet kiln)" = "Hello, kiln, from a kiln-built library!"
    greet --version | grep -q 'libgreet 1.0'
  '';
}
