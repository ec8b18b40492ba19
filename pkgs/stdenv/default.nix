# A standard build environment: `mkDerivation` builds a package with `setup.sh`, from the tools
# of one bootstrap stage and the host paths that stage declares.
{ lib, name, host, stageTools ? [ ], cc ? "cc", hostToolchain ? null }:
let
  system = builtins.currentSystem;

  mkDerivation = args:
    let
      pname = args.pname or (throw "mkDerivation: a package needs a `pname`");
      version = args.version or "";
      outputs = args.outputs or [ "out" ];
      inputs = lib.concatMap lib.allOutputs ((args.buildInputs or [ ]) ++ (args.nativeBuildInputs or [ ]));
      attrs = builtins.removeAttrs args [ "meta" "passthru" "buildInputs" "nativeBuildInputs" ] // {
        name = if version == "" then pname else "${pname}-${version}";
        inherit system outputs inputs;
        builder = "/bin/sh";
        args = [ "-e" ./setup.sh ];
        stageTools = lib.concatMap lib.allOutputs stageTools;
        hostPath = host.path;
        CC = args.CC or cc;
        stdenvStage = name;
        __impureHostDeps = host.deps ++ (args.__impureHostDeps or [ ]);
        # Content-addressed by default: a rebuild that changes nothing stops there.
        __contentAddressed = args.__contentAddressed or true;
      } // lib.optionalAttrs (hostToolchain != null) { inherit hostToolchain; };
      drv = derivation attrs;
    in
    drv // (args.passthru or { }) // {
      meta = { name = attrs.name; } // (args.meta or { });
      inherit pname version;
      # Rebuilds the package with some of its attributes changed: `old: { ... }` or a set.
      overrideAttrs = f: mkDerivation (args // (if builtins.isFunction f then f args else f));
    };

  # A derivation that runs `script` (with `$out` to create) and nothing else.
  runCommand = pname: env: script:
    mkDerivation ({ inherit pname; phases = "buildPhase"; buildPhase = script; } // env);
in
{
  inherit name mkDerivation runCommand stageTools;
}
