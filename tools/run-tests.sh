#!/bin/bash
# Every check of nova-recover, as CI runs it: style, the unit and
# functional tests (stestr), the patch series proof and a small
# benchmark. Prints one closing "N passed, N failed" line for the tests.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${NOVA_RECOVER_IN_VENV:-}" != 1 ]; then
    NOVA_RECOVER_IN_VENV=1 exec "$top/tools/with-venv.sh" "$top/tools/run-tests.sh" "$@"
fi
cd "$top"

failed_steps=()
step() {
    local name=$1; shift
    echo "=== $name: $*"
    if ! "$@"; then
        failed_steps+=("$name")
        echo "=== $name FAILED"
    fi
}

step pep8 flake8
step coverage-doc python tools/gen_coverage_doc.py --check
step stestr python -m stestr run --color "$@"
# Every prefix of the series is checked on nova's start-up tests only,
# the full series on the whole of test_compute_mgr; tox -e patches runs
# the whole file on every prefix.
step patches env PATCHES_PREFIX_TESTS="${PATCHES_PREFIX_TESTS-RecoveryTestCase|init_instance|init_host}" \
    bash tools/check_patches.sh
step bench python benchmarks/bench_init_host.py --sizes 100,1000

stats=$(python -m stestr last --subunit 2>/dev/null | subunit-stats 2>/dev/null)
passed=$(echo "$stats" | sed -n 's/^Passed tests: *//p')
failed=$(echo "$stats" | sed -n 's/^Failed tests: *//p')
skipped=$(echo "$stats" | sed -n 's/^Skipped tests: *//p')
passed=${passed:-0} failed=${failed:-0} skipped=${skipped:-0}
echo
if [ ${#failed_steps[@]} -ne 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
fi
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
[ ${#failed_steps[@]} -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
