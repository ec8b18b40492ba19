# kiln's package set: real upstream releases built from their source tarballs, bootstrapped in
# stages from the host's compiler, as a fixed point that overlays can extend.
#
#   kiln build ./pkgs -A demo                       # the in-tree demo, no download
#   kiln build ./pkgs -A all --mirror DIR           # everything, tarballs from a mirror
#
# Stage 0 is the host (`bootstrap/host.nix`): its compiler and binutils for every stage, and
# its basic tools. Stage 1 rebuilds make, sed, patch, m4, xz and bzip2 with them. Stage 2
# builds musl with stage 1's tools, then zlib, pcre2, lua and hello against musl, so that what
# they need at run time comes from the store.
{ overlays ? [ ] }:
let
  lib = import ./lib.nix;
  host = import ./bootstrap/host.nix;

  packages = final: {
    inherit lib;
    callPackage = lib.callPackageWith final;

    fetchurl = { url, sha256, name ? baseNameOf url }:
      derivation {
        inherit name url;
        system = builtins.currentSystem;
        builder = "builtin:fetchurl";
        outputHash = sha256;
        outputHashAlgo = "sha256";
        outputHashMode = "flat";
      };

    # Stage 0: the host. Its compiler's versions are recorded in `hostToolchain`, which every
    # package depends on, so a new host compiler rebuilds everything and nothing else does.
    hostToolchain = (import ./stdenv {
      inherit lib;
      name = "host";
      host = { deps = host.compiler ++ host.core; inherit (host) path; };
    }).runCommand "host-toolchain" { } ''
      mkdir -p $out
      gcc --version > $out/gcc
      ld --version > $out/ld
    '';
    stdenv0 = import ./stdenv {
      inherit lib;
      name = "stage0";
      host = { deps = host.compiler ++ host.core ++ host.stage1Only; inherit (host) path; };
      inherit (final) hostToolchain;
    };

    # Stage 1: tools rebuilt from upstream with the host's.
    stage1 = {
      make = final.callPackage ./packages/make { stdenv = final.stdenv0; };
      sed = final.callPackage ./packages/sed.nix { stdenv = final.stdenv0; };
      patch = final.callPackage ./packages/patch.nix { stdenv = final.stdenv0; };
      m4 = final.callPackage ./packages/m4.nix { stdenv = final.stdenv0; };
      xz = final.callPackage ./packages/xz.nix { stdenv = final.stdenv0; };
      bzip2 = final.callPackage ./packages/bzip2.nix { stdenv = final.stdenv0; };
    };
    inherit (final.stage1) make sed patch m4 xz bzip2;

    # Stage 2: the rest, with stage 1's tools and no other tools of the host's.
    stdenv1 = import ./stdenv {
      inherit lib;
      name = "stage1";
      host = { deps = host.compiler ++ host.core; inherit (host) path; };
      stageTools = builtins.attrValues final.stage1;
      inherit (final) hostToolchain;
    };
    musl = final.callPackage ./packages/musl.nix { stdenv = final.stdenv1; };
    stdenv = import ./stdenv {
      inherit lib;
      name = "stage2";
      host = { deps = host.compiler ++ host.core; inherit (host) path; };
      stageTools = builtins.attrValues final.stage1 ++ [ final.musl ];
      cc = "musl-gcc";
      inherit (final) hostToolchain;
    };
    zlib = final.callPackage ./packages/zlib.nix { };
    pcre2 = final.callPackage ./packages/pcre2.nix { };
    lua = final.callPackage ./packages/lua.nix { };
    hello = final.callPackage ./packages/hello.nix { };

    # The in-tree demo: a C library and a program using it, no download at all.
    libgreet = final.callPackage ./demo/libgreet.nix { stdenv = final.stdenv0; };
    demo = final.callPackage ./demo/greet.nix { stdenv = final.stdenv0; };

    tests = import ./tests.nix { pkgs = final; };

    # Every package and every test, for `kiln build ./pkgs -A all`.
    all = {
      inherit (final) make sed patch m4 xz bzip2 musl zlib pcre2 lua hello libgreet demo;
      tests = final.tests // { recurseForDerivations = true; };
    };
  };
in
lib.makeExtensible (lib.extends (lib.composeOverlays overlays) packages)
