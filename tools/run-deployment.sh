#!/bin/bash
# The real deployment (issue 9): MariaDB, RabbitMQ, placement, glance,
# neutron and nova as separate processes on 127.0.0.1, two nova-computes
# (compute-a through nova-compute-recover, compute-b stock nova-compute)
# on a fake driver whose guests survive SIGKILL, or on nova's libvirt
# driver with QEMU (--hypervisor libvirt: a libvirtd per compute host,
# tools/libvirt); then the crash scenarios, ours beside stock. See
# doc/source/deployment.rst.
#
#   tools/run-deployment.sh [--hypervisor fake|libvirt]
#       [--scenarios smoke,died,queued,lost,recovery,outage]
#
# Needs root and apt-get (mariadb-server, rabbitmq-server, and for libvirt
# tools/libvirt/install.sh's packages are installed when missing) and
# PyPI for the venv. Every service is stopped at the end,
# also on failure; the run directory with all logs and configuration is
# named on the last line.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NOVA_RECOVER_DEPLOY_VENV:-$top/.work/deploy-venv}
python=${PYTHON:-python3.11}
run=${NOVA_RECOVER_DEPLOY_RUN:-$top/.work/deployment/$(date -u +%Y%m%dT%H%M%SZ)}
start=$(date +%s)
hypervisor=fake
prev=
for arg in "$@"; do
    case $arg in
    --hypervisor=*) hypervisor=${arg#*=} ;;
    *) [ "$prev" = --hypervisor ] && hypervisor=$arg ;;
    esac
    prev=$arg
done

if [ "$(id -u)" != 0 ]; then
    echo "run-deployment: needs root (MariaDB and RabbitMQ run as root here)" >&2
    exit 2
fi

if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null \
        || [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    echo "run-deployment: installing mariadb-server rabbitmq-server" >&2
    # Keep the packages from starting their system services: this run
    # starts its own instances with their own data directories.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends \
        mariadb-server mariadb-client rabbitmq-server >&2
    [ -n "$made_policy" ] && rm -f "$policy"
fi

requirements=("$top/requirements.txt"
              "$top/tools/deployment/deploy-requirements.txt")
if [ "$hypervisor" = libvirt ]; then
    "$top/tools/libvirt/install.sh"
    requirements+=("$top/tools/deployment/libvirt-requirements.txt")
fi
want=$(cat "$top/constraints.txt" "${requirements[@]}" \
       | sha256sum | cut -d' ' -f1)
stamp=$venv/.deploy-stamp
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "run-deployment: building $venv" >&2
    # An existing venv (the tests' own, in CI) only gets the services.
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    pip=("$venv/bin/pip" install -q --disable-pip-version-check
         -c "$top/constraints.txt")
    "${pip[@]}" setuptools wheel >&2
    "${pip[@]}" "${requirements[@]/#/-r}" >&2
    # Already there in the tests' venv: reinstalling it would pull it
    # away, for a moment, from the tests running beside this.
    if [ ! -x "$venv/bin/nova-compute-recover" ] ||
            ! "$venv/bin/python" -I -c 'import os, sys, nova_recover
sys.exit(not os.path.realpath(nova_recover.__file__).startswith(
    os.path.realpath(sys.argv[1]) + os.sep))' "$top" 2>/dev/null; then
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
            --no-build-isolation -e "$top" >&2
    fi
    echo "$want" > "$stamp"
fi

mkdir -p "$run"
child=
finish() {
    rc=$?
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        # deploy.py stops its services on SIGTERM; give it the time.
        kill -TERM "$child" 2>/dev/null || true
        for _ in $(seq 60); do
            kill -0 "$child" 2>/dev/null || break
            sleep 1
        done
    fi
    # Whatever a killed deploy.py left behind, by the pids it recorded,
    # and the libvirt hosts with their guests.
    "$venv/bin/python" "$top/tools/deployment/services.py" "$run" || true
    # Nothing of the run may outlive it: every process of it names the
    # run directory (data directories, configuration, guests' disks).
    left=$(pgrep -f -- "$run/" || true)
    if [ -n "$left" ]; then
        echo "run-deployment: processes left behind, killed:" >&2
        ps -o pid=,args= -p $left | cut -c1-160 >&2 || true
        kill -KILL $left 2>/dev/null || true
        [ "$rc" = 0 ] && rc=1
    fi
    echo "run-deployment: exit $rc after $(( $(date +%s) - start ))s; run directory: $run"
    exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM INT HUP

"$venv/bin/python" "$top/tools/deployment/deploy.py" "$run" "$venv" "$@" &
child=$!
wait "$child"
