# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Compare two outcome tables: the patched nova's and the overlay's.

    python tools/patches/compare_outcomes.py PATCHED.json OVERLAY.json

Each file maps a scenario name to its row (task_state, vm_state,
power_state, fault, actions, ...). Prints every scenario that is
missing on one side, errored, or differs, and exits 1 if there is any;
otherwise prints "scenarios: N equal".
"""

import json
import sys


def compare(patched, overlay):
    """(number of equal scenarios, [problem lines])."""
    problems = []
    equal = 0
    for name in sorted(set(patched) | set(overlay)):
        if name not in patched:
            problems.append('%s: missing from the patched run' % name)
            continue
        if name not in overlay:
            problems.append('%s: missing from the overlay run' % name)
            continue
        a, b = patched[name], overlay[name]
        for side, row in (('patched', a), ('overlay', b)):
            if isinstance(row, dict) and row.get('error'):
                problems.append('%s: %s run did not finish: %s'
                                % (name, side, row['error']))
        if a == b and not (isinstance(a, dict) and a.get('error')):
            equal += 1
            continue
        if a != b:
            keys = sorted(set(a) | set(b)) if isinstance(a, dict) and \
                isinstance(b, dict) else ['row']
            for key in keys:
                va = a.get(key) if isinstance(a, dict) else a
                vb = b.get(key) if isinstance(b, dict) else b
                if va != vb:
                    problems.append('%s: %s patched=%r overlay=%r'
                                    % (name, key, va, vb))
    return equal, problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        patched = json.load(f)
    with open(argv[1]) as f:
        overlay = json.load(f)
    equal, problems = compare(patched, overlay)
    for line in problems:
        print('DIFF %s' % line)
    print('scenarios: %d equal%s'
          % (equal, ', %d problems' % len(problems) if problems else ''))
    return 1 if problems or not equal else 0


if __name__ == '__main__':
    sys.exit(main())
