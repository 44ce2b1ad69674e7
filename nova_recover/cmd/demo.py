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

"""Show what a nova-compute crash leaves behind, with and without us.

Runs Nova in-process (sqlite, fake virt driver, Nova's own functional
test harness), kills nova-compute in the middle of one operation per
recovery rule, restarts it, and prints how each server ends on stock
nova and with nova-recover. The crash scenarios are those of the
functional tests; each mode runs in its own processes because the
overlay is process-wide.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

# nova-compute's default concurrency mode (native threading), unless the
# environment asks for another. It must be set before nova is imported,
# here and in the runners this starts, which inherit it: nova picks the
# mode once per process.
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', 'True')

OUTCOMES = 'nova_recover.tests.functional.outcomes'
MODES = (('stock', ['--stock']), ('nova-recover', []))


def _scenario_names(every):
    """Every scenario, or one per rule: the first where stock ends apart."""
    from nova_recover.tests.functional import scenarios
    if every:
        return [scenario.name for scenario in scenarios.SCENARIOS]
    chosen = {}
    for scenario in scenarios.SCENARIOS:
        best = chosen.get(scenario.module)
        if best is None or (_stock_differs(scenario) and
                            not _stock_differs(best)):
            chosen[scenario.module] = scenario
    return [scenario.name for scenario in scenarios.SCENARIOS
            if chosen[scenario.module] is scenario]


def _stock_differs(scenario):
    return bool(scenario.differences(scenario.stock, scenario.end))


def _run(names, jobs, workdir, log):
    """{mode title: {scenario: row}}, running the outcomes runner."""
    procs = []
    for title, flags in MODES:
        for number in range(jobs):
            chunk = names[number::jobs]
            if not chunk:
                continue
            path = os.path.join(workdir, '%s-%d.json' % (title, number))
            cmd = [sys.executable, '-m', OUTCOMES, '--json', path] + flags
            for name in chunk:
                cmd += ['--scenario', name]
            procs.append((title, path, subprocess.Popen(
                cmd, stdout=log, stderr=log)))
    runs = {title: {} for title, _ in MODES}
    for title, path, proc in procs:
        proc.wait()
        if os.path.exists(path):
            with open(path) as rows:
                runs[title].update(json.load(rows))
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Crash nova-compute in the middle of one operation per '
                    'recovery rule and compare how stock nova and '
                    'nova-recover leave each server after the restart.')
    parser.add_argument('--all', action='store_true',
                        help='every crash scenario, not one per rule')
    parser.add_argument('--jobs', type=int, default=3,
                        help='processes per mode (default: 3)')
    parser.add_argument('--log', metavar='FILE',
                        help='keep the services\' logs in FILE')
    args = parser.parse_args(argv)

    from nova_recover.tests import overlay_fixtures
    if overlay_fixtures.native():
        parser.error('NOVA_RECOVER_NATIVE is set: the nova under test is '
                     'patched, so there is no stock nova to compare with')
    names = _scenario_names(args.all)
    print('Crashing nova-compute in %d operations, on stock nova and with '
          'nova-recover...' % len(names), flush=True)
    with tempfile.TemporaryDirectory(prefix='nova-recover-demo-') as tmp:
        log_path = args.log or os.path.join(tmp, 'services.log')
        with open(log_path, 'w') as log:
            runs = _run(names, max(1, args.jobs), tmp, log)
        failed = sorted({name for rows in runs.values() for name in names
                         if 'error' in rows.get(name, {'error': 'lost'})})
        if failed:
            print('These scenarios did not run: %s; the end of the services\' '
                  'log follows on stderr.' % ', '.join(failed))
            with open(log_path) as log:
                sys.stderr.write(log.read()[-4000:])

    from nova_recover.tests.functional import outcomes
    print()
    print(outcomes.table([(title, runs[title]) for title, _ in MODES]))
    print()
    print("'at crash' is the task_state nova-compute died in; '-' is none.")
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
