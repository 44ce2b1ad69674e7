#!/bin/bash
# Run a command inside the project's virtualenv, creating it first if
# needed. The venv is built from the release's constraints file only
# (constraints.txt for 2026.2), so every machine resolves the same
# versions; it is rebuilt when a requirements or constraints file
# changes.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3.11}
# NOVA_RECOVER_RELEASE=2025.1 or 2026.1 builds a venv of its own on that
# release's constraints file (tools/patches/releases.py); unset, 2026.2's.
eval "$("$python" "$top/tools/patches/releases.py" \
        ${NOVA_RECOVER_RELEASE:+"$NOVA_RECOVER_RELEASE"})"
if [ -n "${NOVA_RECOVER_RELEASE:-}" ]; then
    venv=${NOVA_RECOVER_VENV:-$top/.work/venv-$release}
else
    venv=${NOVA_RECOVER_VENV:-$top/.venv}
fi
stamp=$venv/.nova-recover-stamp
want=$(cat "$constraints" "$top/requirements.txt" \
           "$top/test-requirements.txt" | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "with-venv: building $venv (pip, ${constraints##*/})" >&2
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -c "$constraints" setuptools wheel >&2
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -c "$constraints" \
        -r "$top/requirements.txt" -r "$top/test-requirements.txt" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
        --no-build-isolation \
        -e "$top" >&2
    echo "$want" > "$stamp"
fi

export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
export PYTHONDONTWRITEBYTECODE=1
cd "$top"
exec "$@"
