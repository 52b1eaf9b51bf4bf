#!/usr/bin/env bash
# Build the documentation site into OUT (default: site/), so that OUT/index.html is its home page:
#   bash scripts/docs.sh OUT [--no-execute]
# The course's notebooks are executed during the build. Needs the docs extra
# (CHAINRULE_WITH_DOCS=1 bash scripts/setup.sh, or pip install -e '.[docs]').
set -euo pipefail
out=${1:-site}
case $out in /*) ;; *) out="$PWD/$out" ;; esac   # OUT is relative to where you ran this
shift || true
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import mkdocs, mkdocs_jupyter, mkdocstrings" 2>/dev/null; then
    echo "docs: the site's tools are missing; run: CHAINRULE_WITH_DOCS=1 bash scripts/setup.sh" >&2
    echo "      (or, in your own environment: pip install -e '.[docs]')" >&2
    exit 1
fi
exec "$PYTHON" scripts/build_docs.py "$out" "$@"
