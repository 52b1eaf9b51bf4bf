#!/usr/bin/env bash
# Set up chainrule on a fresh Debian/Ubuntu machine (or macOS with Homebrew): Graphviz's `dot`,
# a .venv, the project.
# Safe to run again: each step is skipped when its work is already done.
#
#   CHAINRULE_WITH_TORCH=1    also install PyTorch 2.13.0 (CPU) for the parity tests
#   CHAINRULE_WITH_BROWSER=1  also install Chromium for the browser test of the HTML export
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
want="$(cat setup.cfg pyproject.toml | checksum | cut -c1-16) torch=${CHAINRULE_WITH_TORCH:-0}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing chainrule (editable) with its test extra"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    if [ "${CHAINRULE_WITH_TORCH:-0}" = 1 ]; then
        say "installing torch 2.13.0 (CPU), lion-pytorch and schedulefree for the parity tests"
        .venv/bin/python -m pip install -q torch==2.13.0
        .venv/bin/python -m pip install -q -e '.[test-torch]'
    fi
    echo "$want" > "$stamp"
fi
say "ready: $(.venv/bin/python --version), $(dot -V 2>&1)"
