#!/usr/bin/env bash
# Set up chainrule on a fresh Debian/Ubuntu machine (or macOS with Homebrew): Graphviz's `dot`,
# a .venv, the project.
# Safe to run again: each step is skipped when its work is already done.
#
#   CHAINRULE_WITH_TORCH=1    also install PyTorch 2.13.0, lion-pytorch and schedulefree for the
#                             parity tests (the test-torch extra)
#   CHAINRULE_WITH_BROWSER=1  also install Chromium for the browser tests, and fetch the pinned
#                             npm packages pyodide and @viz-js/viz into .cache/npm/ (npm pack,
#                             checked against the hashes pinned in nn/playground/export.py) for
#                             the test of the static site (python -m nn.playground --export)
#   CHAINRULE_WITH_DOCS=1     also install the documentation site's tools (bash scripts/docs.sh)
#   CHAINRULE_WITH_RELEASE=1  also install what builds and checks the packages (build, twine, ruff)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

# Run apt-get as root, through sudo when we are not root, or explain what to do by hand.
apt_install() {
    local runner=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            runner=(sudo)
        else
            say "need to install $* but I am not root and sudo is missing."
            say "install them yourself (e.g. 'apt-get install $*') and run this script again."
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "need to install $* but apt-get is missing; install them with your package manager."
        exit 1
    fi
    say "installing $* with apt-get"
    "${runner[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq "$@" >/dev/null
}

if ! command -v dot >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1 && command -v brew >/dev/null 2>&1; then
        say "installing graphviz with Homebrew"   # macOS
        brew install graphviz
    else
        apt_install graphviz
    fi
fi
if [ "${CHAINRULE_WITH_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv || {
        say "'$PYTHON -m venv' failed; on Debian/Ubuntu install python3-venv first."
        exit 1
    }
fi

# Reinstall only when the metadata changed since the last successful install.
stamp=.venv/.chainrule-installed
checksum() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
extras=test
# test-torch: torch 2.13.0, lion-pytorch and schedulefree, the references of the parity tests
[ "${CHAINRULE_WITH_TORCH:-0}" = 1 ] && extras="$extras,test-torch"
[ "${CHAINRULE_WITH_DOCS:-0}" = 1 ] && extras="$extras,docs"
[ "${CHAINRULE_WITH_RELEASE:-0}" = 1 ] && extras="$extras,release"
want="$(cat setup.cfg pyproject.toml | checksum | cut -c1-16) torch=${CHAINRULE_WITH_TORCH:-0} extras=$extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    # An editable install points the environment at this checkout: through a link, that would
    # quietly take another checkout's environment away from it.
    if [ -L .venv ]; then
        say ".venv is a link to $(readlink .venv), set up for other metadata or extras than"
        say "this checkout's; installing would point that environment at this checkout."
        say "remove the link ('rm .venv') and run this script again: it makes a .venv of its own."
        exit 1
    fi
    say "installing chainrule (editable) with the extras $extras"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extras]"
    echo "$want" > "$stamp"
fi
# The static site's test runs Pyodide and Graphviz (WebAssembly) from the npm registry's
# tarballs: about 8 MB, downloaded once into .cache/npm/ (ignored by git) and checked.
if [ "${CHAINRULE_WITH_BROWSER:-0}" = 1 ]; then
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    mkdir -p .cache/npm
    npm_tool() {
        .venv/bin/python -c 'import sys; from nn.playground.export import npm_tool
sys.exit(npm_tool(sys.argv[1:]))' "$@"
    }
    npm_tool --npm-packages | while read -r spec file; do
        if [ ! -f ".cache/npm/$file" ]; then
            say "fetching $spec from the npm registry"
            (cd .cache/npm && npm pack --silent "$spec" >/dev/null)
        fi
    done
    npm_tool --check-npm .cache/npm
fi
say "ready: $(.venv/bin/python --version), $(dot -V 2>&1)"
