#!/bin/sh
# Set up aptmirror on Debian 12: Debian packages (when root), the .venv virtualenv, and
# then (unless --no-demo) a complete mirror job on the bundled example.
set -eu
cd "$(dirname "$0")"

DEB_PACKAGES="python3 python3-venv gpg gpgv dpkg-dev apt xz-utils bzip2 zstd"

missing=""
for pkg in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "Installing Debian packages:$missing"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
        echo "Missing Debian packages:$missing (run this script as root to install them)" >&2
        exit 1
    fi
fi

# Debian's own python3 (the python3 package above), not another one earlier on PATH: it is
# the interpreter users run, and Debian builds it with PGO and LTO — a first mirror needs
# ≈ 10 % less CPU than with a Python built without them (pyenv's default build).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# An editable install is not byte-compiled (a wheel or a Debian package is): without the
# .pyc files every run, and every pool worker process, would compile each module again
# wherever Python may not write them (PYTHONDONTWRITEBYTECODE, a read-only checkout).
.venv/bin/python -m compileall -q src

if [ "${1:-}" != "--no-demo" ]; then
    .venv/bin/python -m aptmirror.testing.demo
fi
