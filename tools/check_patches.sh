#!/bin/bash
# Prove that patches/<release>/ is current and applies cleanly to the
# release's nova sdist, that nova's own tests pass on the full series and
# its start-up tests after every patch, that nova's compute restart
# functional tests pass on the patched nova and on stock nova with the
# overlay, and that the patched nova recovers every crash scenario as the
# overlay does.
#
#   tools/with-venv.sh tools/check_patches.sh      (or: tox -e patches)
#   NOVA_RECOVER_RELEASE=2025.1 tools/with-venv.sh tools/check_patches.sh
#                                                 (or: tox -e patches-2025.1)
#
# Environment:
#   NOVA_RECOVER_RELEASE  the stable series (tools/patches/releases.py);
#                         default 2026.2. Run it in that release's venv.
#   PATCHES_FULL=1        run nova's whole unit suite (nova.tests.unit)
#                         on the full series; otherwise (the default, for
#                         CI) nova.tests.unit.compute. tox -e patches
#                         sets it.
#   PATCHES_PREFIX_TESTS  regex narrowing the test_compute_mgr tests run
#                         for the shorter prefixes 1..N-1 (default: all of
#                         them); the start-up recovery test modules and
#                         test_compute's start-up tests always run.
#   PATCHES_PREFIXES      the prefixes to check, as numbers ("7 14 23"),
#                         or "none"; default every one from 1 to N-1.
#   PATCHES_SKIP_FUNCTIONAL=1  skip step 3 (nova's restart functional tests).
#   PATCHES_SKIP_OUTCOMES=1    skip step 4 (the crash-scenario comparison).
#   PATCHES_FULL_SCOPE=startup run only the start-up tests on the full
#                         series in step 6 (what CI runs for the older
#                         releases), not nova.tests.unit.compute.
#   PATCHES_CONCURRENCY   stestr workers (default 2).
#
# tools/patches/known-failures.txt lists, with the reason, the nova tests
# that fail on a stock nova release itself; they are excluded from every
# run and named in the output.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON_FOR_CHECK:-python}
python_path=$(command -v "$python")
# release, nova_version, sdist, sha (and constraints, modes).
eval "$("$python" "$top/tools/patches/releases.py" \
        ${NOVA_RECOVER_RELEASE:+"$NOVA_RECOVER_RELEASE"})"
patches=$top/patches/$release
work=$top/.work/check_patches/$release
cache=$top/.work/sdist
known=$top/tools/patches/known-failures.txt
concurrency=${PATCHES_CONCURRENCY:-2}
full=${PATCHES_FULL:-0}
export OS_NOVA_DISABLE_EVENTLET_PATCHING=False
export PYTHONDONTWRITEBYTECODE=1
# Stock nova runs with the overlay below; only step 5 sets it, for its run
# of the patched nova.
unset NOVA_RECOVER_NATIVE
# Nova's functional tests load the API from the installed paste config.
venv=$("$python" -c 'import sys; print(sys.prefix)')
export OS_WSGI__API_PASTE_CONFIG=${OS_WSGI__API_PASTE_CONFIG:-$venv/etc/nova/api-paste.ini}

# The start-up tests: every test of test_compute_mgr (or those matching
# PATCHES_PREFIX_TESTS), every test of the start-up recovery modules, and
# test_compute's tests of _init_instance.
startup='nova\.tests\.unit\.compute\.test_compute_mgr\.'
startup_modules='nova\.tests\.unit\.compute\.startup_recovery\.'
startup_compute='nova\.tests\.unit\.compute\.test_compute\..*(init_instance|partial_deletion)'

failed=0
applied=0
passed=0
unit_scope=
functional_patched=0
functional_overlay=0
scenarios=0
step_start=0
timings=()

say() { echo "check_patches: $*"; }
fail() { echo "check_patches: FAIL: $*" >&2; failed=1; }
begin() { step_start=$SECONDS; step_name=$1; say "== $*"; }
end() {
    local took=$(( SECONDS - step_start ))
    timings+=("${step_name%%:*} ${took}s")
    say "   ($took s)"
}

unpack() {  # unpack DEST: a fresh tree of the release's nova at DEST
    rm -rf "$1" && mkdir -p "$1.tmp" &&
        tar -xzf "$cache/$sdist" -C "$1.tmp" --no-same-owner &&
        mv "$1.tmp/nova-$nova_version" "$1" && rmdir "$1.tmp"
}

apply_quilt() {  # apply_quilt TREE K: patch -p1 the first K patches
    local tree=$1 k=$2 n=0 name out
    while read -r name; do
        [ -z "$name" ] && continue
        n=$((n + 1))
        [ "$n" -gt "$k" ] && break
        if ! out=$(cd "$tree" && patch -p1 --fuzz=0 --no-backup-if-mismatch \
                   -i "$patches/$name" 2>&1); then
            echo "$out"
            fail "$name does not apply"
            return 1
        fi
        if echo "$out" | grep -Eiq 'fuzz|offset|reject|failed'; then
            echo "$out"
            fail "$name applies only with fuzz or offset"
            return 1
        fi
    done < "$patches/series"
}

# run_tests TREE TEST_PATH REGEX LABEL [PYTHON]: nova's tests matching
# REGEX under TEST_PATH, known failures excluded; sets count. PYTHON, if
# given, is what stestr starts its workers with (the overlay wrapper).
run_tests() {
    local tree=$1 test_path=$2 regex=$3 label=$4 wrapper=${5:-}
    local log=$tree.$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_').log
    (cd "$tree" && env PYTHONPATH="$tree${wrapper:+:$top}" \
        ${wrapper:+"PYTHON=$wrapper"} "$python" -m stestr \
        --test-path "$test_path" --top-dir . run \
        --concurrency "$concurrency" --exclude-list "$known" \
        "$regex" >"$log" 2>&1)
    local rc=$?
    count=$(sed -n 's/^ - Passed: \([0-9]*\).*/\1/p' "$log" | tail -1)
    local bad skipped
    bad=$(sed -n 's/^ - Failed: \([0-9]*\).*/\1/p' "$log" | tail -1)
    skipped=$(sed -n 's/^ - Skipped: \([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ "$rc" -ne 0 ] || [ -z "$count" ] || [ "$count" -eq 0 ] ||
            [ "${bad:-0}" -ne 0 ]; then
        grep -E '^(FAIL|ERROR):|^\{[0-9]+\} .*\.\.\. FAILED' "$log" | head -40
        fail "$label: rc=$rc, passed=${count:-?}, failed=${bad:-?}" \
             "(log: $log)"
        count=${count:-0}
        return 1
    fi
    say "$label: $count passed, ${skipped:-0} skipped"
}

mkdir -p "$work" "$cache"
total_start=$SECONDS

# 0. patches/<release>/ (and, for 2026.2, doc/source/review.rst) are
#    what the generator makes from the overlay today.
begin "0. drift: tools/gen_patches.py --release $release --check"
"$python" "$top/tools/gen_patches.py" --release "$release" --check ||
    fail "patches/$release drifted"
end

# 1. The sdist, verified.
begin "1. fetch $sdist"
if [ ! -f "$cache/$sdist" ]; then
    "$python" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: "nova==$nova_version" -d "$cache" ||
        fail "pip download"
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
mapfile -t series < <(grep -v '^\s*$' "$patches/series")
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
        git am -q "$patches/$name" || { git am --abort; exit 1; }
    done
) || fail "git am"
if ! diff -r -q -x .git "$quilt" "$gitam"; then
    fail "patch -p1 and git am give different trees"
fi
tools="patch -p1 and git am"
if command -v quilt >/dev/null; then
    realquilt=$work/quilt
    unpack "$realquilt" && mkdir "$realquilt/patches" &&
        cp "$patches"/* "$realquilt/patches/" &&
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
mapfile -t touched < <(cd "$gitam" && git diff --name-only \
    "HEAD~$npatches" -- '*.py')
# flake8 with nova's configuration on every file the series touches;
# what it already reports on the stock file is not the series' (nova 31
# and 33 predate the pyflakes our hacking pins), so only new reports
# fail, compared by file, code and message.
flake8_reports() {  # flake8_reports TREE FILE...: path:code:message
    local tree=$1; shift
    (cd "$tree" && "$python" -m flake8 --format='%(path)s:%(code)s:%(text)s' \
        "$@" 2>/dev/null) | sort
}
stock_tree=$work/stock-flake8
unpack "$stock_tree"
mapfile -t existing < <(cd "$stock_tree" && ls "${touched[@]}" 2>/dev/null)
new_reports=$(comm -23 <(flake8_reports "$quilt" "${touched[@]}") \
    <(flake8_reports "$stock_tree" ${existing[@]+"${existing[@]}"}))
rm -rf "$stock_tree"
if [ -n "$new_reports" ]; then
    echo "$new_reports"
    fail "flake8 (nova's tox.ini config) on the ${#touched[@]} patched files"
fi
(cd "$quilt" && PYTHONPATH="$quilt" "$python" -c \
    'import nova.compute.manager' && PYTHONPATH="$quilt" "$python" -c \
    'import nova.compute.startup_recovery.engine') ||
    fail "import cycle between the manager and startup_recovery"
# What oslo-config-generator --namespace nova.conf and the docs build do.
(cd "$quilt" && PYTHONPATH="$quilt" "$python" -c '
from nova.conf import opts
groups = [getattr(g, "name", g) for g, _ in opts.list_opts()]
assert "recover" in groups, groups' 2>&1) ||
    fail "nova.conf.opts.list_opts() does not list [recover]"
while read -r line; do
    case $line in ''|'#'*) ;; *) say "known failure of stock nova, excluded: $line" ;; esac
done < "$known"
end

# 3. nova's functional tests that restart a compute service or run
#    init_host: on the patched nova, and on stock nova with the overlay
#    installed (nova's functional tests as the series edits them).
begin "3. nova restart functional tests"
if [ "${PATCHES_SKIP_FUNCTIONAL:-0}" = 1 ]; then
    say "skipped (PATCHES_SKIP_FUNCTIONAL=1)"
else
    mapfile -t restart < <(cd "$quilt" && {
        echo nova/tests/functional/compute/test_init_host.py
        grep -l 'restart_compute_service' \
            nova/tests/functional/regressions/*.py; } | sort -u)
    modules=$(printf '%s\n' "${restart[@]}" | sed 's/\.py$//; s#/#\\.#g' |
              paste -sd'|')
    regex="^($modules)\."
    say "${#restart[@]} modules: ${restart[*]##*/}"
    if run_tests "$quilt" nova/tests/functional "$regex" \
            "functional, patched nova"; then
        functional_patched=$count
    fi
    stock=$work/stock-overlay
    unpack "$stock" &&
        (cd "$gitam" && git diff "HEAD~$npatches" -- nova/tests/functional) |
        (cd "$stock" && patch -p1 -s --fuzz=0) ||
        fail "the series' functional test edits do not apply to stock nova"
    if cmp -s "$quilt/nova/compute/manager.py" \
            "$stock/nova/compute/manager.py"; then
        fail "$stock is not stock nova"
    fi
    if run_tests "$stock" nova/tests/functional "$regex" \
            "functional, stock nova + overlay" \
            "$python_path $top/tools/patches/with_overlay.py"; then
        functional_overlay=$count
    fi
fi
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

# 5. nova's start-up tests after every shorter prefix (or the ones in
#    PATCHES_PREFIXES).
prefix_regex="^($startup${PATCHES_PREFIX_TESTS:+.*($PATCHES_PREFIX_TESTS)}|$startup_modules|$startup_compute)"
begin "5. nova start-up tests, prefixes ${PATCHES_PREFIXES:-1..$((npatches - 1))}" \
      "${PATCHES_PREFIX_TESTS:+(subset: $PATCHES_PREFIX_TESTS)}"
if [ "${PATCHES_PREFIXES:-}" = none ]; then
    prefixes=()
elif [ -n "${PATCHES_PREFIXES:-}" ]; then
    read -r -a prefixes <<< "$PATCHES_PREFIXES"
else
    prefixes=($(seq 1 $((npatches - 1))))
fi
for k in ${prefixes[@]+"${prefixes[@]}"}; do
    tree=$work/prefix-$k
    unpack "$tree" && apply_quilt "$tree" "$k" || continue
    run_tests "$tree" nova/tests/unit/compute "$prefix_regex" \
        "prefix 1..$k (${series[$((k - 1))]})"
    rm -rf "$tree"
done
end

# 6. nova's unit tests on the full series (last: the longest step).
if [ "${PATCHES_FULL_SCOPE:-}" = startup ]; then
    unit_scope="start-up tests"
    unit_path=nova/tests/unit/compute
    unit_regex=$prefix_regex
elif [ "$full" = 1 ]; then
    unit_scope=nova.tests.unit
    unit_path=nova/tests/unit
    unit_regex="^nova\.tests\.unit\."
else
    unit_scope=nova.tests.unit.compute
    unit_path=nova/tests/unit/compute
    unit_regex="^nova\.tests\.unit\.compute\."
fi
begin "6. nova unit tests ($unit_scope), full series"
if run_tests "$quilt" "$unit_path" "$unit_regex" \
        "full series, $unit_scope"; then
    passed=$count
fi
end
say "timings: ${timings[*]}"
say "total $(( SECONDS - total_start )) s"
# A step skipped says so: "0 passed" would read as a run that found
# nothing.
functional_note="restart functional tests: $functional_patched patched /"
functional_note+=" $functional_overlay overlay passed"
[ "${PATCHES_SKIP_FUNCTIONAL:-0}" = 1 ] &&
    functional_note="restart functional tests: not run"
scenarios_note="scenarios: $scenarios equal"
[ "${PATCHES_SKIP_OUTCOMES:-0}" = 1 ] && scenarios_note="scenarios: not run"
echo "patches ($release, nova $nova_version): $applied applied," \
     "nova unit tests ($unit_scope): $passed passed, $functional_note," \
     "$scenarios_note"
exit $failed
