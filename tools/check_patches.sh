#!/bin/bash
# Prove that patches/ is current and applies cleanly to the nova 34.0.0
# sdist, that nova's own test_compute_mgr passes after every patch, and
# that the patched nova recovers every crash scenario as the overlay does.
#
#   tools/with-venv.sh tools/check_patches.sh      (or: tox -e patches)
#
# Environment:
#   PATCHES_PREFIX_TESTS  regex run for the shorter prefixes 1..N-1
#                         (default: all of test_compute_mgr); the full
#                         series always runs all of it.
#   PATCHES_SKIP_OUTCOMES=1  skip step 4 (the crash-scenario comparison).
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON_FOR_CHECK:-python}
work=$top/.work/check_patches
cache=$top/.work/sdist
sdist=nova-34.0.0.tar.gz
sha=919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df
testmod=nova.tests.unit.compute.test_compute_mgr
export OS_NOVA_DISABLE_EVENTLET_PATCHING=False
export PYTHONDONTWRITEBYTECODE=1

failed=0
applied=0
passed=0
scenarios=0
step_start=0

say() { echo "check_patches: $*"; }
fail() { echo "check_patches: FAIL: $*" >&2; failed=1; }
begin() { step_start=$SECONDS; say "== $*"; }
end() { say "   ($(( SECONDS - step_start )) s)"; }

unpack() {  # unpack DEST: a fresh nova-34.0.0 tree at DEST
    rm -rf "$1" && mkdir -p "$1.tmp" &&
        tar -xzf "$cache/$sdist" -C "$1.tmp" --no-same-owner &&
        mv "$1.tmp/nova-34.0.0" "$1" && rmdir "$1.tmp"
}

apply_quilt() {  # apply_quilt TREE K: patch -p1 the first K patches
    local tree=$1 k=$2 n=0 name out
    while read -r name; do
        [ -z "$name" ] && continue
        n=$((n + 1))
        [ "$n" -gt "$k" ] && break
        if ! out=$(cd "$tree" && patch -p1 --fuzz=0 --no-backup-if-mismatch \
                   -i "$top/patches/$name" 2>&1); then
            echo "$out"
            fail "$name does not apply"
            return 1
        fi
        if echo "$out" | grep -Eiq 'fuzz|offset|reject|failed'; then
            echo "$out"
            fail "$name applies only with fuzz or offset"
            return 1
        fi
    done < "$top/patches/series"
}

run_tests() {  # run_tests TREE [REGEX]: nova's test_compute_mgr; sets count
    local tree=$1 filter=${2:-} log=$1.testlog
    (cd "$tree" && PYTHONPATH="$tree" "$python" -m stestr \
        --test-path nova/tests/unit --top-dir . run \
        "$testmod${filter:+\..*($filter)}" >"$log" 2>&1)
    local rc=$?
    count=$(sed -n 's/^ - Passed: \([0-9]*\).*/\1/p' "$log" | tail -1)
    local bad
    bad=$(sed -n 's/^ - Failed: \([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ "$rc" -ne 0 ] || [ -z "$count" ] || [ "${bad:-0}" -ne 0 ]; then
        grep -E '^(FAIL|ERROR):|^\{[0-9]+\} .*\.\.\. FAILED' "$log" | head -40
        fail "test_compute_mgr in $(basename "$tree"): rc=$rc, " \
             "passed=${count:-?}, failed=${bad:-?} (log: $log)"
        return 1
    fi
}

mkdir -p "$work" "$cache"
total_start=$SECONDS

# 0. patches/ is what the generator makes from the overlay today.
begin "0. drift: tools/gen_patches.py --check"
"$python" "$top/tools/gen_patches.py" --check || fail "patches/ drifted"
end

# 1. The sdist, verified.
begin "1. fetch $sdist"
if [ ! -f "$cache/$sdist" ]; then
    "$python" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: nova==34.0.0 -d "$cache" || fail "pip download"
fi
got=$(sha256sum "$cache/$sdist" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
    fail "$sdist sha256 $got, expected $sha"
    exit 1
fi
say "$sdist sha256 ok"
end

# 2. Apply with patch -p1 (no fuzz, no offset), with git am and, where it
#    is installed, with quilt; the trees must be identical.
begin "2. apply the series"
mapfile -t series < <(grep -v '^\s*$' "$top/patches/series")
npatches=${#series[@]}
quilt=$work/patch-p1
unpack "$quilt" && apply_quilt "$quilt" "$npatches" && applied=$npatches
gitam=$work/git-am
unpack "$gitam"
(
    cd "$gitam" &&
    export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
        GIT_AUTHOR_NAME=check GIT_AUTHOR_EMAIL=check@invalid \
        GIT_COMMITTER_NAME=check GIT_COMMITTER_EMAIL=check@invalid &&
    git init -q && git add -A -f . && git commit -q -m pristine &&
    for name in "${series[@]}"; do
        git am -q "$top/patches/$name" || { git am --abort; exit 1; }
    done
) || fail "git am"
if ! diff -r -q -x .git "$quilt" "$gitam"; then
    fail "patch -p1 and git am give different trees"
fi
tools="patch -p1 and git am"
if command -v quilt >/dev/null; then
    realquilt=$work/quilt
    unpack "$realquilt" && mkdir "$realquilt/patches" &&
        cp "$top"/patches/* "$realquilt/patches/" &&
        (cd "$realquilt" && QUILT_PATCHES=patches quilt push -q -a \
             --fuzz=0 >/dev/null) ||
        fail "quilt push -a --fuzz=0"
    diff -r -q -x .pc -x patches "$quilt" "$realquilt" ||
        fail "patch -p1 and quilt give different trees"
    tools="patch -p1, git am and quilt"
else
    say "quilt is not installed: quilt push not tried"
fi
say "$applied/$npatches patches applied with $tools"
(cd "$quilt" && "$python" -m flake8 nova/compute/startup_recovery \
    nova/compute/manager.py nova/tests/unit/compute/test_compute_mgr.py) ||
    fail "flake8 (nova's tox.ini config) on the patched files"
(cd "$quilt" && PYTHONPATH="$quilt" "$python" -c \
    'import nova.compute.manager' && PYTHONPATH="$quilt" "$python" -c \
    'import nova.compute.startup_recovery.engine') ||
    fail "import cycle between the manager and startup_recovery"
end

# 3. nova's own tests: the full series, then every shorter prefix.
begin "3. nova test_compute_mgr, full series"
if run_tests "$quilt"; then
    passed=$count
    say "full series: $passed passed"
fi
end
begin "3. nova test_compute_mgr, prefixes 1..$((npatches - 1))" \
      "${PATCHES_PREFIX_TESTS:+(subset: $PATCHES_PREFIX_TESTS)}"
for ((k = 1; k < npatches; k++)); do
    tree=$work/prefix-$k
    unpack "$tree" && apply_quilt "$tree" "$k" || continue
    if run_tests "$tree" "${PATCHES_PREFIX_TESTS:-}"; then
        say "prefix 1..$k (${series[$((k - 1))]}): $count passed"
    fi
done
end

# 4. Same outcome of every crash scenario: patched nova vs overlay.
begin "4. crash scenarios: patched nova vs stock nova + overlay"
if [ "${PATCHES_SKIP_OUTCOMES:-0}" = 1 ]; then
    say "skipped (PATCHES_SKIP_OUTCOMES=1)"
else
    (cd "$top" && NOVA_RECOVER_NATIVE=1 PYTHONPATH="$quilt:$top" \
        "$python" -m nova_recover.tests.functional.outcomes \
        --json "$work/patched.json" >"$work/patched.log" 2>&1) ||
        fail "outcomes on the patched nova (log: $work/patched.log)"
    (cd "$top" && env -u NOVA_RECOVER_NATIVE PYTHONPATH="$top" \
        "$python" -m nova_recover.tests.functional.outcomes \
        --json "$work/overlay.json" >"$work/overlay.log" 2>&1) ||
        fail "outcomes on the overlay (log: $work/overlay.log)"
    if out=$("$python" "$top/tools/patches/compare_outcomes.py" \
             "$work/patched.json" "$work/overlay.json"); then
        echo "$out"
        scenarios=$(echo "$out" | sed -n 's/^scenarios: \([0-9]*\).*/\1/p')
    else
        echo "$out"
        fail "the patched nova and the overlay disagree"
    fi
fi
end

say "total $(( SECONDS - total_start )) s"
echo "patches: $applied applied, nova tests: $passed passed," \
     "scenarios: $scenarios equal"
exit $failed
