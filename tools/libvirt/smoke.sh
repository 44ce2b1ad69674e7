#!/bin/bash
# Smoke test of the private libvirt hosts (issue 17): install libvirt and
# QEMU, start two hosts under a temporary directory, boot one tiny guest
# in each, check that each host sees only its own guest, SIGKILL one
# libvirtd and check that its guest survived and is found again by the
# restarted daemon, then stop everything (also on failure) and print the
# timings and whether KVM or TCG ran the guests.
#
#   tools/libvirt/smoke.sh
#
# LIBVIRT_SMOKE_TYPE=kvm|qemu forces the domain type (default: kvm when
# the QEMU driver offers it, else qemu, i.e. TCG); LIBVIRT_SMOKE_IDLE is
# the seconds over which the idle guest's CPU is measured (default 10).
# Needs root. Nothing in CI runs this yet.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hosts=$here/hosts.sh
idle=${LIBVIRT_SMOKE_IDLE:-10}
virsh=(virsh -q -c qemu:///system)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
say() { echo "smoke: $*"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

"$here/install.sh"

work=$(mktemp -d /tmp/libvirt-smoke.XXXXXX)
finish() {
    rc=$?
    for h in a b; do
        "$hosts" stop "$work" "$h" || rc=1
    done
    if [ "$rc" = 0 ]; then
        rm -rf "$work"
    else
        say "left $work for a look"
    fi
    say "exit $rc"
}
trap finish EXIT
trap 'exit 143' TERM INT HUP

in_host() { local h=$1; shift; "$hosts" exec "$work" "$h" -- "$@"; }
qemu_pid() { cat "$work/$1/run/libvirt/qemu/guest-$1.pid"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

domain_xml() {
    # One vCPU, 16 MiB, the tiny disk on virtio, COM1 to a file, nothing
    # else (no network, USB, balloon or graphics).
    cat <<XML
<domain type='$2'>
  <name>guest-$1</name>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/tiny-$1.raw'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/guest-$1-console.log'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
}

declare -A took bootcpu
for h in a b; do
    t=$(now)
    "$hosts" start "$work" "$h"
    took[start-$h]=$(since "$t")
done

type=${LIBVIRT_SMOKE_TYPE:-}
if [ -z "$type" ]; then
    if in_host a virsh -q -c qemu:///system domcapabilities --virttype kvm \
            >/dev/null 2>&1; then
        type=kvm
    else
        type=qemu
    fi
fi

for h in a b; do
    python3 "$here/tiny_image.py" "$work/$h/lib/images/tiny-$h.raw"
    domain_xml "$h" "$type" > "$work/$h/guest-$h.xml"
    t=$(now)
    in_host "$h" "${virsh[@]}" create "$work/$h/guest-$h.xml" >/dev/null
    took[create-$h]=$(since "$t")
    console=$work/$h/log/qemu/guest-$h-console.log
    for _ in $(seq 600); do
        grep -q 'tiny-guest: booted' "$console" 2>/dev/null && break
        sleep 0.05
    done
    grep -q 'tiny-guest: booted' "$console" || fail "guest-$h did not boot"
    took[boot-$h]=$(since "$t")
    # CPU the QEMU process used up to here: its start and the BIOS.
    bootcpu[$h]=$(cpu_ticks "$(qemu_pid "$h")")
done
accel=$(tr '\0' ' ' < "/proc/$(qemu_pid a)/cmdline" |
        grep -o -- '-accel [a-z]*' || true)

for h in a b; do
    seen=$(in_host "$h" "${virsh[@]}" list --all --name | sed '/^$/d' |
           tr '\n' ' ')
    [ "$seen" = "guest-$h " ] ||
        fail "host $h sees '$seen', expected only guest-$h"
    say "host $h sees only: $seen"
done
if [ -S /run/libvirt/libvirt-sock ]; then
    say "note: a system libvirtd is running outside the hosts"
fi

q=$(qemu_pid a)
t0=$(cpu_ticks "$q")
sleep "$idle"
ticks=$(( $(cpu_ticks "$q") - t0 ))
cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$idle" \
      'BEGIN { printf "%.2f", 100 * t / hz / s }')

# A compute host crash: libvirtd dies, its guest must not.
"$hosts" kill "$work" a
kill -0 "$q" 2>/dev/null || fail "guest-a (qemu $q) died with its libvirtd"
say "libvirtd of a killed (SIGKILL); guest-a qemu $q still running"
t=$(now)
"$hosts" start "$work" a
took[restart-a]=$(since "$t")
state=$(in_host a "${virsh[@]}" domstate guest-a)
[ "$state" = running ] || fail "guest-a is '$state' after the restart"
[ "$(qemu_pid a)" = "$q" ] || fail "guest-a has a new qemu after the restart"
seen=$(in_host b "${virsh[@]}" list --all --name | sed '/^$/d' | tr '\n' ' ')
[ "$seen" = "guest-b " ] || fail "host b sees '$seen' after a's restart"
say "restarted libvirtd of a found guest-a running (same qemu $q)"

for h in b a; do
    ours=$("$hosts" pids "$work" "$h" | awk '{ $1 = ""; print }' |
           tr -d -- '-' | xargs)
    t=$(now)
    "$hosts" stop "$work" "$h"
    took[stop-$h]=$(since "$t")
    for p in $ours; do
        # Gone or a zombie waiting for pid 1.
        if [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null || echo Z)" \
                != Z ]; then
            fail "process $p of host $h left after stop"
        fi
    done
    say "host $h stopped; none of its processes left: $ours"
done

say "versions: $(libvirtd --version | sed 's/.*) //') libvirt," \
    "$(qemu-system-x86_64 --version | head -1 | awk '{print $4}') QEMU"
say "domain type $type (${accel:-accel unknown}), 16 MiB, 1 vCPU"
for k in start-a start-b create-a boot-a create-b boot-b restart-a \
         stop-b stop-a; do
    say "$(printf '%-10s %6s s' "$k" "${took[$k]}")"
done
say "CPU of QEMU up to the boot line: a ${bootcpu[a]}, b ${bootcpu[b]}" \
    "ticks of 1/$(getconf CLK_TCK) s"
say "idle guest-a CPU over ${idle}s: ${ticks} ticks = ${cpu}%"
say "OK"
