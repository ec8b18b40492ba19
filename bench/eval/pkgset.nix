# Evaluation workload: a package set in the style of nixpkgs, built as a fixed point with
# overlays and callPackage, written here from scratch: `fix`, `extends`, `makeExtensible`,
# `callPackageWith` (functionArgs and intersectAttrs) and `override`. Its packages are plain
# attribute sets, not derivations: each has a name and an id hashed from its dependencies' ids,
# as a derivation's hash would be. Three overlays bump versions, add packages and override
# others; the result is the number of packages and a hash of all their ids.
let
  n = 12000;
  mod = a: b: a - (a / b) * b;

  lib = rec {
    fix = f: let x = f x; in x;
    extends = overlay: f: final: let prev = f final; in prev // overlay final prev;
    composeExtensions = f: g: final: prev: let fp = f final prev; in fp // g final (prev // fp);
    makeExtensible = f: fix (final: f final // { extend = o: makeExtensible (extends o f); });
    makeOverridable = f: args:
      let r = f args; in r // { override = newArgs: makeOverridable f (args // newArgs); };
    callPackageWith = scope: fn: args:
      makeOverridable fn (builtins.intersectAttrs (builtins.functionArgs fn) scope // args);
  };

  # A fake stdenv: mkPackage hashes the names and ids of what a package depends on.
  mkPackage = { pname, version, deps ? [ ], patches ? [ ] }: rec {
    inherit pname version deps patches;
    name = "${pname}-${version}";
    id = builtins.hashString "sha1"
      (builtins.concatStringsSep ":" ([ name ] ++ patches ++ map (d: d.id) deps));
  };

  # Package functions: each asks for its dependencies by name, as nixpkgs' do.
  leafPkg = { mkPackage, pname, version ? "1.0" }: mkPackage { inherit pname version; };
  libPkg = { mkPackage, zlib, openssl, pname, dep, version ? "2.1" }:
    mkPackage { inherit pname version; deps = [ zlib openssl dep ]; };
  appPkg = { mkPackage, libc, zlib, pname, a, b, version ? "3.0", enableExtra ? false }:
    mkPackage { inherit pname version; deps = [ libc a b ] ++ (if enableExtra then [ zlib ] else [ ]); };

  base = final: {
    inherit mkPackage lib;
    callPackage = lib.callPackageWith final;
    libc = final.callPackage leafPkg { pname = "libc"; };
    zlib = final.callPackage libPkg { pname = "zlib"; zlib = final.libc; openssl = final.libc; dep = final.libc; };
    openssl = final.callPackage libPkg { pname = "openssl"; openssl = final.libc; dep = final.libc; };
  } // builtins.listToAttrs (builtins.genList (i: {
    name = "p${toString i}";
    value =
      if i < 10 then final.callPackage leafPkg { pname = "p${toString i}"; }
      else if mod i 3 == 0 then final.callPackage libPkg { pname = "p${toString i}"; dep = final."p${toString (i / 2)}"; }
      else final.callPackage appPkg {
        pname = "p${toString i}";
        a = final."p${toString (i / 3)}";
        b = final."p${toString (i - 1 - mod i 7)}";
      };
  }) n);

  # Overlays: bump every 10th package, add a set of new packages, override the extra flag.
  bump = final: prev: builtins.listToAttrs (builtins.genList (j: let name = "p${toString (j * 10 + 10)}"; in {
    inherit name;
    value = prev.${name}.override { version = "9.${toString j}"; };
  }) (n / 10 - 1));
  extra = final: prev: builtins.listToAttrs (builtins.genList (j: {
    name = "extra${toString j}";
    value = final.callPackage appPkg { pname = "extra${toString j}"; a = final."p${toString j}"; b = final.openssl; };
  }) (n / 5));
  tweak = final: prev: {
    zlib = prev.zlib.override { version = "1.3"; };
    p1001 = prev.p1001.override { enableExtra = true; };
  };

  pkgs = (lib.makeExtensible base).extend (lib.composeExtensions (lib.composeExtensions bump extra) tweak);
  names = builtins.filter (n: builtins.isAttrs pkgs.${n} && pkgs.${n} ? id) (builtins.attrNames pkgs);
in
{
  packages = builtins.length names;
  hash = builtins.hashString "sha256" (builtins.concatStringsSep "," (map (n: pkgs.${n}.id) names));
  last = pkgs."p${toString (n - 1)}".name;
}
