#!/bin/bash
# Private libvirt hosts on one machine (issue 17): one libvirtd per host,
# each in its own mount and UTS namespace (its hostname is NAME), where
# /run, /etc/libvirt,
# /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt are bind mounts
# of the host's own directories under DIR/NAME. A client in the namespace
# (virsh, later the nova-compute of that host) reaches only its host's
# daemon through qemu:///system and never sees another host's domains.
#
#   tools/libvirt/hosts.sh start DIR NAME     namespace (if needed) + libvirtd
#   tools/libvirt/hosts.sh exec DIR NAME -- CMD...   run CMD in the namespace
#   tools/libvirt/hosts.sh kill DIR NAME      SIGKILL libvirtd only (a crash)
#   tools/libvirt/hosts.sh stop DIR NAME      kill guests, stop everything
#   tools/libvirt/hosts.sh pids DIR NAME      holder, libvirtd and QEMU pids
#
# The namespace is kept by a holder process (sleep) whose pid is in
# DIR/NAME/holder.pid; the daemon, and the QEMU processes it starts, live
# in it. Guests survive the death of libvirtd (QEMU runs in its own
# session) and `start` again finds them through the status files in
# DIR/NAME/run/libvirt/qemu. Needs root and tools/libvirt/install.sh.
#
# Read at a host's first start only:
#   HOSTS_ADDR=IP          libvirtd also listens on IP:16509, plain TCP
#                          with no authentication, for live migration
#                          between the hosts (loopback addresses only)
#   HOSTS_MIGRATION_PORTS="MIN MAX"   QEMU's incoming migration ports
#   HOSTS_MOUNTS="SUB:PATH ..."       more private directories: DIR/NAME/SUB
#                          is bind-mounted at PATH (which must exist)
set -euo pipefail

usage() {
    sed -n '9,13p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}

[ $# -ge 3 ] || usage
cmd=$1 dir=$2 name=$3
shift 3
base=$(realpath -m "$dir/$name")
# /run of the host: pidfiles, sockets and the daemon's domain status.
mounts=(run:/run etc:/etc/libvirt lib:/var/lib/libvirt
        cache:/var/cache/libvirt log:/var/log/libvirt)
extra_mounts=$(cat "$base/mounts" 2>/dev/null || echo "${HOSTS_MOUNTS:-}")
# shellcheck disable=SC2206
mounts+=($extra_mounts)

alive() {
    # A zombie is dead: our daemons are children of pid 1, which may take
    # a while to reap them.
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null &&
        [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
holder_pid() { cat "$base/holder.pid" 2>/dev/null || true; }
daemon_pid() { cat "$base/run/libvirtd.pid" 2>/dev/null || true; }
qemu_pids() {
    local f
    for f in "$base"/run/libvirt/qemu/*.pid; do
        # driver.pid is libvirtd's own lock of the QEMU driver.
        [ "${f##*/}" = driver.pid ] && continue
        [ -e "$f" ] && alive "$(cat "$f")" && cat "$f"
    done
    return 0
}
in_ns() {
    local h
    h=$(holder_pid)
    alive "$h" || { echo "hosts: $name: no namespace" >&2; return 1; }
    nsenter --mount="/proc/$h/ns/mnt" --uts="/proc/$h/ns/uts" -- "$@"
}

prepare() {
    # First start only: copies of the system's directories, our settings.
    [ -e "$base/.prepared" ] && return 0
    mkdir -p "$base/run"
    cp -a /etc/libvirt "$base/etc"
    cp -a /var/lib/libvirt "$base/lib"
    cp -a /var/cache/libvirt "$base/cache"
    # The QEMU capabilities another host of DIR has probed already (the
    # same binaries on the same machine): saves each further host the
    # seconds libvirtd spends probing QEMU at its first start. libvirtd
    # probes again if they do not match.
    local other
    for other in "$(dirname "$base")"/*/cache/qemu/capabilities; do
        if [ -d "$other" ] && [ "$other" != "$base/cache/qemu/capabilities" ]
        then
            mkdir -p "$base/cache/qemu/capabilities"
            cp -a "$other"/. "$base/cache/qemu/capabilities/"
            break
        fi
    done
    mkdir -p "$base/log/qemu"
    local spec
    for spec in ${HOSTS_MOUNTS:-}; do
        mkdir -p "$base/${spec%%:*}"
    done
    echo "${HOSTS_MOUNTS:-}" > "$base/mounts"
    # No network is autostarted: no dnsmasq and no bridge per host.
    rm -f "$base"/etc/qemu/networks/autostart/*
    local tcp=0
    if [ -n "${HOSTS_ADDR:-}" ]; then
        case $HOSTS_ADDR in
        127.*) ;;
        *) echo "hosts: HOSTS_ADDR must be a loopback address" >&2; exit 2 ;;
        esac
        tcp=1
        echo "$HOSTS_ADDR" > "$base/listen"
    fi
    # libvirt takes the first of two settings of a key: each once.
    cat >> "$base/etc/libvirtd.conf" <<CONF

# tools/libvirt/hosts.sh: private host $name
listen_tls = 0
listen_tcp = $tcp
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
# Two daemons on one machine must not share the host UUID (migration
# between them is refused when they do).
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
    if [ "$tcp" = 1 ]; then
        cat >> "$base/etc/libvirtd.conf" <<CONF
# Live migration between the private hosts: loopback only, no auth.
listen_addr = "$HOSTS_ADDR"
auth_tcp = "none"
CONF
    fi
    cat >> "$base/etc/qemu.conf" <<CONF

# tools/libvirt/hosts.sh: private host $name
# /dev/kvm is root-only here: QEMU runs as root to open it.
user = "root"
group = "root"
remember_owner = 0
security_driver = "none"
# QEMU in the daemon's namespace, not in one of its own per domain.
namespaces = [ ]
# Console and QEMU logs to files: no virtlogd per host.
stdio_handler = "file"
# Leave the machine's cgroup tree alone (it is shared by all hosts).
cgroup_controllers = [ ]
CONF
    if [ -n "${HOSTS_MIGRATION_PORTS:-}" ]; then
        # shellcheck disable=SC2086
        set -- $HOSTS_MIGRATION_PORTS
        printf 'migration_port_min = %s\nmigration_port_max = %s\n' \
            "$1" "$2" >> "$base/etc/qemu.conf"
    fi
    touch "$base/.prepared"
}

start_namespace() {
    alive "$(holder_pid)" && return 0
    rm -f "$base/holder.pid"
    local spec binds=""
    for spec in "${mounts[@]}"; do
        binds+="mount --bind '$base/${spec%%:*}' '${spec#*:}' && "
    done
    # setsid -f: the holder outlives this script and its terminal.
    # Its own UTS namespace too: libvirt names the host (nova's node) by
    # its hostname, which must differ between the hosts of one machine.
    setsid -f unshare --mount --uts --propagation private -- /bin/sh -c \
        "$binds hostname '$name' && echo \$\$ > '$base/holder.pid.tmp' &&
         mv '$base/holder.pid.tmp' '$base/holder.pid' && exec sleep infinity" \
        </dev/null >>"$base/holder.log" 2>&1
    for _ in $(seq 50); do
        [ -s "$base/holder.pid" ] && return 0
        sleep 0.1
    done
    echo "hosts: $name: namespace did not come up, see $base/holder.log" >&2
    return 1
}

start() {
    mkdir -p "$base"
    prepare
    start_namespace
    if alive "$(daemon_pid)"; then
        return 0
    fi
    local listen=()
    [ -e "$base/listen" ] && listen=(--listen)
    in_ns libvirtd --daemon "${listen[@]}" --pid-file /run/libvirtd.pid
    for _ in $(seq 100); do
        if in_ns virsh -q -c qemu:///system version >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "hosts: $name: libvirtd not answering, see" \
        "$base/log/libvirtd.log" >&2
    return 1
}

wait_gone() {
    local pid=$1 t=$2
    for _ in $(seq $((t * 10))); do
        alive "$pid" || return 0
        sleep 0.1
    done
    return 1
}

stop() {
    # A test host's teardown, fast and complete: the daemon first, then
    # every process left in the host's namespace (its guests' QEMUs, and
    # anything else started there), then the namespace's holder.
    local h d ns p pid
    h=$(holder_pid)
    d=$(daemon_pid)
    if alive "$d"; then
        kill -TERM "$d"
        wait_gone "$d" 10 || kill -KILL "$d" 2>/dev/null || true
    fi
    if alive "$h"; then
        ns=$(readlink "/proc/$h/ns/mnt")
        for p in /proc/[0-9]*; do
            pid=${p#/proc/}
            [ "$pid" = "$h" ] && continue
            if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    fi
    # Guests by their pidfiles too, should the namespace be gone.
    for p in $(qemu_pids); do
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in $(qemu_pids); do
        wait_gone "$p" 10 || true
    done
    if alive "$h"; then
        kill -TERM "$h"
        wait_gone "$h" 5 || kill -KILL "$h" 2>/dev/null || true
    fi
    rm -f "$base/holder.pid"
}

case $cmd in
start) start ;;
stop) stop ;;
kill)
    d=$(daemon_pid)
    alive "$d" && kill -KILL "$d" && wait_gone "$d" 5
    ;;
exec)
    [ "${1:-}" = -- ] && shift
    [ $# -ge 1 ] || usage
    in_ns "$@"
    ;;
pids)
    echo "holder $(holder_pid)"
    d=$(daemon_pid)
    alive "$d" && echo "libvirtd $d" || echo "libvirtd -"
    echo "qemu $(qemu_pids | tr '\n' ' ')"
    ;;
*) usage ;;
esac
