# A wide graph of CPU-bound builds for the parallelism benchmark (bench/run.sh): n independent
# derivations, each counting to `loops` in /bin/sh (about 0.5 s with dash at 350,000 on the
# development machine) and writing the count. Works with kiln and with CppNix's nix-build.
{ n ? 12, loops ? 350000 }:
builtins.genList (i: derivation {
  name = "busy-${toString i}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "i=0; while [ $i -lt ${toString loops} ]; do i=$((i + 1)); done; echo ${toString i} $i > $out" ];
  __impureHostDeps = [ "/bin/sh" "/lib/x86_64-linux-gnu" "/lib64" ];
}) n
