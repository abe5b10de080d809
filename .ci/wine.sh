# shellcheck shell=bash
#
# Prepares this Linux machine to build pipekit for x86_64-pc-windows-gnu and
# run the tests under wine. Meant to be sourced (by .ci/run, which runs with
# `set -euo pipefail`), because it exports the variables cargo needs:
#
#     source .ci/wine.sh && cargo test --target x86_64-pc-windows-gnu </dev/null
#     wineserver -k
#
# Idempotent: each step is skipped only when its result is already there.
# Every failure prints the step that failed and makes `source` return
# non-zero; nothing is skipped silently. See CROSS.md for why each step exists.

_pipekit_wine_fail() {
    echo "error: .ci/wine.sh: $* failed" >&2
    return 1
}

# Runs a command as root: directly when already root, else through sudo.
_pipekit_wine_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: .ci/wine.sh: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# Every fallible command below carries its own `|| ...`: this function runs
# as the condition of an `if`, where `set -e` does not apply.
_pipekit_wine_setup() {
    local ci_dir
    ci_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || {
        _pipekit_wine_fail "locating .ci/"
        return 1
    }

    # 1. The cross linker and wine.
    if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || ! command -v wine >/dev/null 2>&1; then
        echo ".ci/wine.sh: installing gcc-mingw-w64-x86-64, wine, wine64" >&2
        _pipekit_wine_as_root apt-get update || {
            _pipekit_wine_fail "apt-get update"
            return 1
        }
        _pipekit_wine_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends gcc-mingw-w64-x86-64 wine wine64 || {
            _pipekit_wine_fail "apt-get install gcc-mingw-w64-x86-64 wine wine64"
            return 1
        }
        local tool
        for tool in x86_64-w64-mingw32-gcc wine wineboot wineserver; do
            command -v "$tool" >/dev/null 2>&1 || {
                _pipekit_wine_fail "finding $tool after apt-get install"
                return 1
            }
        done
    fi

    # 2. Rust's standard library for the target.
    local installed
    installed="$(rustup target list --installed)" || {
        _pipekit_wine_fail "rustup target list --installed"
        return 1
    }
    if ! grep -qx 'x86_64-pc-windows-gnu' <<<"$installed"; then
        rustup target add x86_64-pc-windows-gnu || {
            _pipekit_wine_fail "rustup target add x86_64-pc-windows-gnu"
            return 1
        }
    fi

    # 3. What cargo and wine read from the environment.
    export WINEPREFIX="${WINEPREFIX:-/tmp/pipekit-wine}"
    export WINEDEBUG=-all
    export WINEDLLOVERRIDES="mscoree,mshtml="
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc

    # 4. The wine prefix (~10 s the first time).
    local system32="$WINEPREFIX/drive_c/windows/system32"
    if [ ! -f "$WINEPREFIX/system.reg" ] || [ ! -d "$system32" ]; then
        echo ".ci/wine.sh: initialising the wine prefix $WINEPREFIX" >&2
        wineboot --init || {
            _pipekit_wine_fail "wineboot --init (WINEPREFIX=$WINEPREFIX)"
            return 1
        }
        wineserver -w || {
            _pipekit_wine_fail "wineserver -w"
            return 1
        }
        [ -d "$system32" ] || {
            _pipekit_wine_fail "initialising the prefix ($system32 is missing)"
            return 1
        }
    fi

    # 5. bcryptprimitives.dll, which std needs and wine 8 lacks.
    if [ ! -f "$system32/bcryptprimitives.dll" ]; then
        echo ".ci/wine.sh: building the bcryptprimitives.dll stub" >&2
        x86_64-w64-mingw32-gcc -O2 -shared -s -o "$system32/bcryptprimitives.dll" \
            "$ci_dir/bcryptprimitives.c" -ladvapi32 || {
            _pipekit_wine_fail "building bcryptprimitives.dll from $ci_dir/bcryptprimitives.c"
            return 1
        }
    fi
}

if ! _pipekit_wine_setup; then
    # `return` when sourced, `exit` when run as a script.
    return 1 2>/dev/null || exit 1
fi
