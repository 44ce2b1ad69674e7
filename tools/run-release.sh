#!/bin/bash
# Prove one of the older releases nova-recover supports (2025.1: nova 31,
# 2026.1: nova 33) in its own venv, built from its constraints file:
#
#   tools/run-release.sh 2025.1          what CI runs for it
#   tools/run-release.sh 2025.1 --full   the whole proof (tox -e
#                                        patches-2025.1)
#
# CI: the overlay's unit suite in the release's default concurrency mode,
# and tools/check_patches.sh with the apply check and nova's start-up
# tests on the full series (PATCHES_PREFIXES adds prefixes).
# --full: the unit and functional suites in every mode the release's
# nova-compute runs in (tools/patches/releases.py; under nova 33's
# threading the API-driven functional suites skip, as its harness serves
# API requests under eventlet only), and check_patches.sh
# in full: nova's whole unit suite, every prefix, nova's restart
# functional tests and the crash scenarios against the overlay.
#
# STREAMS=DIR keeps each suite's subunit stream there, as
# <release>-<mode>.subunit, for tools/run-tests.sh's closing count.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release=${1:?usage: tools/run-release.sh RELEASE [--full]}
full=0
[ "${2:-}" = --full ] && full=1
if [ "${NOVA_RECOVER_IN_VENV:-}" != 1 ]; then
    NOVA_RECOVER_RELEASE=$release NOVA_RECOVER_IN_VENV=1 \
        exec "$top/tools/with-venv.sh" "$top/tools/run-release.sh" "$@"
fi
cd "$top"
eval "$(python tools/patches/releases.py "$release")"
export OS_TEST_TIMEOUT=${OS_TEST_TIMEOUT:-600}

failed=()
step() {
    local name=$1; shift
    echo "=== $release $name: $* (at ${SECONDS} s)"
    "$@" || { failed+=("$name"); echo "=== $release $name FAILED"; }
}

# A stestr run of one suite in one mode, its stream kept in STREAMS.
suite() {
    local label=$1 mode=$2 path=$3 run_id
    run_id=$(cat .stestr/next-stream 2>/dev/null || echo 0)
    step "$label-${mode%%:*}" env \
        OS_NOVA_DISABLE_EVENTLET_PATCHING="${mode#*:}" \
        python -m stestr --test-path "$path" run --color
    if [ -n "${STREAMS:-}" ]; then
        python -m stestr history show "$run_id" --subunit \
            > "$STREAMS/$release-$label-${mode%%:*}.subunit" 2>/dev/null
    fi
}

if [ "$full" = 1 ]; then
    for mode in $modes; do
        suite unit "$mode" ./nova_recover/tests/unit
        suite functional "$mode" ./nova_recover/tests/functional
    done
    step patches env NOVA_RECOVER_RELEASE="$release" PATCHES_FULL=1 \
        bash tools/check_patches.sh
else
    # The release's default mode: the first one releases.py names.
    suite unit "${modes%% *}" ./nova_recover/tests/unit
    step patches env NOVA_RECOVER_RELEASE="$release" \
        PATCHES_SKIP_FUNCTIONAL=1 PATCHES_SKIP_OUTCOMES=1 \
        PATCHES_FULL_SCOPE=startup \
        PATCHES_PREFIXES="${PATCHES_PREFIXES-none}" \
        PATCHES_PREFIX_TESTS="${PATCHES_PREFIX_TESTS-RecoveryTestCase|init_instance|init_host}" \
        bash tools/check_patches.sh
fi
echo "run-release $release: ${SECONDS} s"
if [ ${#failed[@]} -ne 0 ]; then
    echo "run-release $release: failed steps: ${failed[*]}"
    exit 1
fi
