# Stage 0: what the package set takes from the host, declared path by path. Builds see these
# read-only at the same places (`__impureHostDeps`); nothing else of the host is visible.
let
  bin = names: map (n: "/usr/bin/${n}") names;

  coreutils = [
    "[" "basename" "cat" "chmod" "cmp" "cp" "cut" "date" "dirname" "echo" "env" "expr" "false"
    "head" "id" "install" "ln" "ls" "mkdir" "mktemp" "mv" "nproc" "od" "printf" "pwd" "readlink"
    "rm" "rmdir" "seq" "sleep" "sort" "tail" "tee" "test" "touch" "tr" "true" "uname" "uniq"
    "wc" "diff" "grep" "egrep" "fgrep" "awk" "tar" "gzip" "gunzip" "find" "xargs" "sh"
  ];
in
rec {
  # The compiler and binutils, which every stage uses (building GCC is out of reach here),
  # with the C library and headers they compile against.
  compiler = bin [
    "gcc" "cc" "cpp" "as" "ld" "ld.bfd" "ar" "ranlib" "nm" "strip" "objcopy" "objdump" "readelf"
  ] ++ [ "/usr/lib/gcc" "/usr/include" "/usr/lib/x86_64-linux-gnu" "/lib/x86_64-linux-gnu" "/lib64" ];

  # The basic tools (a shell, coreutils, grep, awk, diff, tar, gzip, find) without which no
  # configure script runs. No stage rebuilds them (their sources are not in the set), so
  # every stage takes them from here.
  core = bin coreutils ++ [ "/bin/sh" ];

  # What stage 1 alone takes from the host besides: the tools it rebuilds.
  stage1Only = bin [ "make" "sed" "patch" "xz" "bzip2" ];

  # The `PATH` entry under which the host programs above are found in a build.
  path = "/usr/bin";
}
