#!/bin/bash
# Install Debian 12's libvirt (9.0.0) and QEMU (7.2) for the private
# libvirt hosts of tools/libvirt/hosts.sh (issue 17), without letting the
# packages start their system services: every host runs its own daemon in
# its own mount namespace, a system libvirtd would only be in the way.
# libvirt-dev and pkg-config are there to build libvirt-python from PyPI.
#
#   tools/libvirt/install.sh
#
# Idempotent: does nothing when every package is already installed.
# Needs root and apt-get.
set -euo pipefail

packages=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
          libvirt-dev pkg-config)

if [ "$(id -u)" != 0 ]; then
    echo "libvirt/install: needs root" >&2
    exit 2
fi

missing=()
for p in "${packages[@]}"; do
    if [ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" \
            != installed ]; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} = 0 ]; then
    echo "libvirt/install: already installed: ${packages[*]}" >&2
    exit 0
fi

echo "libvirt/install: installing ${missing[*]}" >&2
# invoke-rc.d asks policy-rc.d first; 101 means "action not allowed", so
# the maintainer scripts install but start nothing. Only a policy this
# script made is removed again, also when apt-get fails.
policy=/usr/sbin/policy-rc.d
made_policy=
cleanup() {
    if [ -n "$made_policy" ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# No recommends: no dnsmasq, lvm2 or the lxc/xen/vbox drivers; the QEMU
# driver comes in as a dependency of libvirt-daemon.
apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
