# kiln's standard build environment: runs a package's phases. POSIX sh, started by the
# derivation's builder as `sh -e setup.sh`.
#
# The derivation's attributes arrive as environment variables: `src`, `patches`,
# `configureFlags`, `makeFlags`, `installFlags`, `doCheck`, `phases`, and a phase's own script
# (`buildPhase`, ...) or hooks (`preConfigure`, `postInstall`, ...) to replace or extend a
# default phase; `inputs` and `stageTools` are store paths whose `bin`, `include` and `lib`
# folders the build may use.

set -eu

# Tools first from the stage and the inputs, then the host's declared programs.
PATH=
for p in ${stageTools:-} ${inputs:-}; do
    if [ -d "$p/bin" ]; then PATH="${PATH:+$PATH:}$p/bin"; fi
done
PATH="${PATH:+$PATH:}$hostPath"
export PATH

CPPFLAGS=${CPPFLAGS:-}
LDFLAGS=${LDFLAGS:-}
for p in ${inputs:-}; do
    if [ -d "$p/include" ]; then CPPFLAGS="$CPPFLAGS -I$p/include"; fi
    if [ -d "$p/lib" ]; then LDFLAGS="$LDFLAGS -L$p/lib -Wl,-rpath,$p/lib"; fi
done
export CC="${CC:-cc}" CPPFLAGS LDFLAGS CFLAGS="${CFLAGS:--O2}"
# Builds are reproducible: no build path or time in the outputs.
export SOURCE_DATE_EPOCH=1 ZERO_AR_DATE=1
CFLAGS="$CFLAGS -ffile-prefix-map=$TMPDIR=/build"

jobs=${NIX_BUILD_CORES:-1}

runHook() {
    eval "hook=\${$1:-}"
    if [ -n "$hook" ]; then eval "$hook"; fi
}

default_unpackPhase() {
    if [ -d "$src" ]; then
        # Sources kept in the package set are folders in the store: copy them writable.
        cp -R "$src" source
        chmod -R u+w source
        cd source
        return
    fi
    tar -xf "$src"
    for d in */; do
        cd "$d"
        return
    done
}

default_patchPhase() {
    for p in ${patches:-}; do
        echo "applying $p"
        patch -p1 < "$p"
    done
}

# Flags are shell words, expanded when used, so they may name `$out`, `$dev`, ...
default_configurePhase() {
    if [ -x ./configure ]; then
        eval ./configure --prefix='"$out"' "${configureFlags:-}"
    fi
}

default_buildPhase() {
    eval make -j"$jobs" "${makeFlags:-}"
}

default_checkPhase() {
    if [ "${doCheck:-}" = 1 ]; then
        eval make -j"$jobs" "${makeFlags:-}" "${checkTarget:-check}"
    fi
}

default_installPhase() {
    eval make "${makeFlags:-}" "${installFlags:-}" install
}

# Moves `$out/<rel>` into `$1/<rel>` if it exists.
moveToOutput() {
    target=$1
    shift
    for rel in "$@"; do
        if [ -e "$out/$rel" ]; then
            mkdir -p "$(dirname "$target/$rel")"
            mv "$out/$rel" "$target/$rel"
        fi
    done
}

default_fixupPhase() {
    # Split outputs: headers, static libraries and pkg-config files for `dev`; manuals and
    # documentation for `man` and `doc`. What a program needs at run time stays in `out`.
    if [ -n "${dev:-}" ]; then
        moveToOutput "$dev" include lib/pkgconfig share/aclocal
        for a in "$out"/lib/*.a; do
            if [ -e "$a" ]; then moveToOutput "$dev" "lib/$(basename "$a")"; fi
        done
    fi
    if [ -n "${man:-}" ]; then moveToOutput "$man" share/man; fi
    if [ -n "${doc:-}" ]; then moveToOutput "$doc" share/doc share/info; fi
    rm -rf "$out/share/info/dir"

    # Debug information names build paths and makes outputs bigger: strip it.
    for dir in "$out/bin" "$out/lib" "$out/libexec"; do
        [ -d "$dir" ] || continue
        for f in "$dir"/* "$dir"/*/*; do
            if [ -f "$f" ] && [ ! -L "$f" ]; then
                strip -S "$f" 2>/dev/null || true
            fi
        done
    done
    for o in $outputs; do
        eval "path=\$$o"
        mkdir -p "$path"
    done
}

# The hooks around a phase: `preConfigure` and `postConfigure` around `configurePhase`, ...
hookSuffix() {
    case $1 in
        unpackPhase) echo Unpack ;;
        patchPhase) echo Patch ;;
        configurePhase) echo Configure ;;
        buildPhase) echo Build ;;
        checkPhase) echo Check ;;
        installPhase) echo Install ;;
        fixupPhase) echo Fixup ;;
        *) echo None ;;
    esac
}

for phase in ${phases:-unpackPhase patchPhase configurePhase buildPhase checkPhase installPhase fixupPhase}; do
    echo "== $phase"
    suffix=$(hookSuffix "$phase")
    runHook "pre$suffix"
    eval "custom=\${$phase:-}"
    if [ -n "$custom" ]; then
        eval "$custom"
    else
        "default_$phase"
    fi
    runHook "post$suffix"
done
