#!/bin/sh
# The whole test suite: lint, types, then unit, integration and end-to-end tests.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/pytest ] || ! .venv/bin/python -c 'import aptmirror' 2>/dev/null; then
    sh ./setup.sh --no-demo
fi
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
.venv/bin/mypy
.venv/bin/pytest -q "$@"
