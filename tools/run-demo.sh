#!/bin/bash
# The demo: in-process nova (sqlite, fake driver) crashes nova-compute in
# the middle of one operation per rule, restarts it as stock nova and as
# nova-recover, and prints what each left behind.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec "$top/tools/with-venv.sh" python -m nova_recover.cmd.demo "$@"
