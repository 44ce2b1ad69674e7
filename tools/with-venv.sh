#!/bin/bash
# Run a command inside the project's virtualenv, creating it first if
# needed. The venv is built from constraints.txt only, so every machine
# resolves the same versions; it is rebuilt when a requirements or
# constraints file changes.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NOVA_RECOVER_VENV:-$top/.venv}
python=${PYTHON:-python3.11}
stamp=$venv/.nova-recover-stamp
want=$(cat "$top/constraints.txt" "$top/requirements.txt" \
           "$top/test-requirements.txt" | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "with-venv: building $venv (pip, constraints.txt)" >&2
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -c "$top/constraints.txt" setuptools wheel >&2
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -c "$top/constraints.txt" \
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
