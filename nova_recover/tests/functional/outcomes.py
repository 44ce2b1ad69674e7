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

"""Run every crash scenario and write down how each server ends.

    python -m nova_recover.tests.functional.outcomes [--stock] \\
        --json FILE [--table] [--scenario NAME ...]

Without --stock the overlay is installed; with NOVA_RECOVER_NATIVE=1 it
is not, and the nova under test is expected to carry the patch series.
Two such files, one per mode, must then be equal: that is the proof that
the patches and the overlay behave alike. Rows hold the fields of
scenarios.ROW_FIELDS (vm_state, task_state, host, flavor, power_state,
guest, images, events, actions, fault; see CrashRestartTestCase.outcome)
and at_crash (the task state when nova-compute died); a scenario that
could not run has 'error' instead.
"""

import argparse
import json
import re
import sys
import unittest

from nova_recover.tests.functional import base
from nova_recover.tests.functional import scenarios
from nova_recover.tests import overlay_fixtures


class OutcomeCase(base.CrashRestartTestCase):
    """One scenario in one mode, recording its row instead of asserting."""

    def __init__(self, scenario, recover, sink):
        super().__init__('test_outcome')
        self.scenario = scenario
        self.RECOVER = recover
        self.sink = sink

    def id(self):
        mode = 'recover' if self.RECOVER else 'stock'
        return '%s.%s.%s' % (__name__, mode, self.scenario.name)

    def test_outcome(self):
        at_crash, row = self.run_scenario(self.scenario)
        row['at_crash'] = at_crash
        self.sink[self.scenario.name] = row


def collect(recover=True, names=None):
    """{scenario name: row} for the named scenarios, or all of them."""
    rows = {}
    chosen = []
    for name in names or [s.name for s in scenarios.SCENARIOS]:
        try:
            chosen.append(scenarios.by_name(name))
        except KeyError:
            rows[name] = {'error': 'no such scenario'}
    for scenario in chosen:
        result = unittest.TestResult()
        OutcomeCase(scenario, recover, rows).run(result)
        problems = result.errors + result.failures
        if problems or scenario.name not in rows:
            trace = problems[0][1] if problems else 'no outcome recorded'
            rows[scenario.name] = {'error': _summary(trace)}
    return rows


def _summary(trace):
    """The exception line of a formatted traceback."""
    lines = trace.strip().splitlines()
    raised = [line for line in lines if re.match(r'[A-Za-z_][\w.]*: ', line)]
    return (raised or lines)[-1]


def _cell(row, key):
    if 'error' in row:
        return 'ERROR: %s' % row['error'] if key == 'task_state' else ''
    value = row.get(key)
    return '-' if value is None else str(value)


COLUMNS = ('task_state', 'vm_state', 'power_state', 'guest', 'host',
           'fault')


def table(runs, columns=COLUMNS):
    """Text table: one line per scenario, a column group per run.

    :param runs: list of (title, {scenario name: row}).
    """
    names = [s.name for s in scenarios.SCENARIOS
             if any(s.name in rows for _, rows in runs)]
    header = ['scenario', 'at crash']
    groups = ['', '']
    for title, _ in runs:
        groups += [title] + [''] * (len(columns) - 1)
        header += list(columns)
    lines = [groups, header]
    for name in names:
        first = next(rows[name] for _, rows in runs if name in rows)
        line = [name, str(first.get('at_crash', '?'))]
        for _, rows in runs:
            row = rows.get(name, {'error': 'not run'})
            line += [_cell(row, key) for key in columns]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines)
              for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        out.append('  '.join(cell.ljust(width)
                             for cell, width in zip(line, widths)).rstrip())
        if number == 1:
            out.append('  '.join('-' * width for width in widths))
    return '\n'.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Crash nova-compute in every scenario and record how '
                    'each server ends after the restart.')
    parser.add_argument('--stock', action='store_true',
                        help='do not install the nova-recover overlay')
    parser.add_argument('--json', metavar='FILE',
                        help='write {scenario: row} as JSON to FILE')
    parser.add_argument('--table', action='store_true',
                        help='print a table of the outcomes')
    parser.add_argument('--scenario', action='append', metavar='NAME',
                        help='run only this scenario (repeatable)')
    args = parser.parse_args(argv)
    rows = collect(recover=not args.stock, names=args.scenario)
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(rows, out, indent=2, sort_keys=True)
            out.write('\n')
    if args.table or not args.json:
        title = ('stock' if args.stock else
                 'patched nova' if overlay_fixtures.native()
                 else 'nova-recover')
        print(table([(title, rows)]))
    failed = sorted(name for name, row in rows.items() if 'error' in row)
    if failed:
        print('scenarios that did not run: %s' % ', '.join(failed),
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
