#!/usr/bin/env bash
# Build the release artefacts and check them as a packager and a user would (.ci/run runs this):
#   1. python -m build: the sdist and the wheel;  2. twine check --strict (metadata, README);
#   3. the sdist's own tests run from the unpacked sdist (it ships what they need);
#   4. the wheel installed into a fresh virtual environment, away from the checkout, and the
#      demo and the playground smoke-run from it (scripts/smoke_installed.py).
# Needs the release extra in .venv (build, twine) and network access to PyPI (the build backend
# and the demo extra are installed into fresh environments).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
PY=$(cd "$(dirname "${CHAINRULE_VENV_PYTHON:-.venv/bin/python}")" && pwd)/python
BASE_PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chainrule-release.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say() { printf '[release] %s\n' "$*"; }

say "building the sdist and the wheel"
"$PY" -m build --outdir "$tmp/dist" . > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
ls "$tmp/dist"

say "twine check --strict"
"$PY" -m twine check --strict "$tmp"/dist/*

say "the sdist's tests, from the unpacked sdist"
mkdir "$tmp/sdist"
tar -xzf "$tmp"/dist/chainrule-*.tar.gz -C "$tmp/sdist"
sdist=$(echo "$tmp"/sdist/chainrule-*)
for needed in conftest.py tests/conftest.py tests/examples.py README.md CHANGELOG.md; do
    [ -f "$sdist/$needed" ] || { say "the sdist lacks $needed"; exit 1; }
done
(cd "$sdist" && PYTHONPATH="$sdist" "$PY" -m pytest -q -p no:cacheprovider \
    tests/test_engine.py tests/test_release.py README.md docs/engine.md)

say "installing the wheel into a fresh environment"
"$BASE_PYTHON" -m venv "$tmp/venv"
wheel=$(echo "$tmp"/dist/chainrule-*.whl)
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q "chainrule[demo] @ file://$wheel"
mkdir "$tmp/elsewhere"
(cd "$tmp/elsewhere" && env -u PYTHONPATH "$tmp/venv/bin/python" \
    "$checkout/scripts/smoke_installed.py" "$checkout" "$tmp/elsewhere")
say "release checks passed"
