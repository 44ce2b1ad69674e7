#!/bin/bash
# Append the 2025.1 series to Debian trixie's nova source package, after
# Debian's own patches, and apply them all with dpkg-source
# --before-build (no fuzz), as a Debian maintainer would
# (doc/source/packagers.rst shows the same commands).
#
#   tools/check_debian.sh        (needs apt-get and dpkg-dev's dpkg-source)
#
# apt-get runs on a private configuration under .work/debian: the deb-src
# entries for trixie exist only there and are removed with it at exit, and
# the system's own apt sources and lists are never read or touched. The
# newest nova source version whose files the mirror serves is taken (a
# mirror may list a newer one before it serves it).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release=2025.1
suite=trixie
work=$top/.work/debian
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/src"
trap 'rm -rf "$work/lists" "$work/archives" "$work/sources.list"' EXIT
printf 'deb-src http://deb.debian.org/debian %s main\n' "$suite" \
    > "$work/sources.list"
printf 'deb-src http://security.debian.org/debian-security %s-security main\n' \
    "$suite" >> "$work/sources.list"
apt=(-o "Dir::Etc::SourceList=$work/sources.list"
     -o "Dir::Etc::SourceParts=/nonexistent"
     -o "Dir::State::Lists=$work/lists"
     -o "Dir::Cache::Archives=$work/archives"
     -o "APT::Sandbox::User=root")

echo "check_debian: apt-get update ($suite and $suite-security sources only)"
apt-get "${apt[@]}" update -qq
version=
for candidate in $(apt-cache "${apt[@]}" showsrc nova |
                   sed -n 's/^Version: //p' | sort -rVu); do
    if (cd "$work/src" &&
        apt-get "${apt[@]}" source -qq --download-only "nova=$candidate" \
            >/dev/null 2>&1); then
        version=$candidate
        break
    fi
    echo "check_debian: nova $candidate is listed but not served; next"
done
if [ -z "$version" ]; then
    echo "check_debian: FAIL: no nova source package of $suite could be" \
         "downloaded" >&2
    exit 1
fi
dsc=$(ls "$work"/src/nova_*.dsc)
tree=$work/src/nova
# apt checked the files against the signed Sources index; the .dsc's own
# signature needs the uploader's key, which is not on the machine.
dpkg-source -x --skip-patches "$dsc" "$tree" > "$work/extract.log" 2>&1
own=$(grep -cv '^\s*\(#\|$\)' "$tree/debian/patches/series" || true)
mkdir -p "$tree/debian/patches/nova-recover"
cp "$top/patches/$release/"*.patch "$tree/debian/patches/nova-recover/"
sed 's|^|nova-recover/|' "$top/patches/$release/series" \
    >> "$tree/debian/patches/series"
ours=$(wc -l < "$top/patches/$release/series")
if ! (cd "$tree" && dpkg-source --before-build . > "$work/before-build.log" \
        2>&1); then
    tail -20 "$work/before-build.log"
    echo "check_debian: FAIL: dpkg-source --before-build (log:" \
         "$work/before-build.log)" >&2
    exit 1
fi
applied=$(grep -c 'applying nova-recover/' "$work/before-build.log")
echo "check_debian: nova $version ($suite): Debian's $own patches, then" \
     "$applied/$ours of patches/$release, applied by dpkg-source" \
     "--before-build"
[ "$applied" = "$ours" ]
