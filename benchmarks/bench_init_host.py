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

"""Cost of the overlay at nova-compute start-up, stock nova beside it.

Runs the loop that ComputeManager.init_host runs (_init_instance over
InstanceList.get_by_host) on one host with N instances in sqlite, 10% of
them in transitional states (half of those with evidence that their
request reached the host, half looking queued), first with stock nova
and then with the overlay, on the same data. Prints the wall-time ratio
and the SQL statements per healthy instance and per candidate, counted
by an SQLAlchemy listener on the engine.

    python benchmarks/bench_init_host.py --sizes 100,1000,5000

Not a unit test: it uses nova's test fixtures only for a database, the
fake driver and the configuration.
"""

import argparse
import gc
import os
import sys
import time

os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', 'False')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import nova_recover.tests  # noqa: E402,F401  (eventlet, objects, paste)

import sqlalchemy as sa  # noqa: E402

from nova.compute import instance_actions  # noqa: E402
from nova.compute import manager as compute_manager  # noqa: E402
from nova.compute import power_state  # noqa: E402
from nova.compute import task_states  # noqa: E402
from nova.compute import vm_states  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova.db.main import api as db_api  # noqa: E402
from nova.network import model as network_model  # noqa: E402
from nova import objects  # noqa: E402
from nova import test  # noqa: E402
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from nova.virt import fake  # noqa: E402

import nova_recover  # noqa: E402
from nova_recover import sweep  # noqa: E402

HOST = 'host1'
EXPECTED_ATTRS = ['info_cache', 'metadata', 'system_metadata',
                  'numa_topology', 'flavor']
# Candidates: API-set states whose stock and overlay recovery stays on
# this host and leaves the guest as it is.
CANDIDATES = [
    (task_states.IMAGE_SNAPSHOT_PENDING, instance_actions.CREATE_IMAGE,
     'snapshot_instance'),
    (task_states.PAUSING, instance_actions.PAUSE, 'pause_instance'),
    (task_states.SUSPENDING, instance_actions.SUSPEND, 'suspend_instance'),
    (task_states.RESIZE_PREP, instance_actions.RESIZE, 'prep_resize'),
]


class Bench(test.TestCase):
    """A TestCase only for its fixtures: database, conf, fake driver."""

    sizes = (100,)
    repeat = 5
    results = []

    def runTest(self):
        self.useFixture(nova_fixtures.SpawnIsSynchronousFixture())
        self.flags(host=HOST)
        self.flags(compute_driver='fake.SmallFakeDriver')
        self.context = nova_context.get_admin_context()
        flavor = objects.Flavor.get_by_name(self.context, 'm1.small')
        self.flavor = flavor
        created = 0
        self.candidates = {}
        for size in self.sizes:
            created = self._populate(created, size)
            self.results.append(self._measure(size))

    # --- data --------------------------------------------------------

    def _populate(self, created, size):
        for n in range(created, size):
            task_state = action = method = None
            if n % 10 == 5:
                task_state, action, method = CANDIDATES[
                    (n // 10) % len(CANDIDATES)]
            instance = objects.Instance(
                self.context, host=HOST, project_id='p',
                user_id='u', vm_state=vm_states.ACTIVE,
                power_state=power_state.RUNNING, task_state=task_state,
                flavor=self.flavor, instance_type_id=self.flavor.id,
                memory_mb=self.flavor.memory_mb, vcpus=self.flavor.vcpus,
                root_gb=self.flavor.root_gb, system_metadata={},
                metadata={}, info_cache=objects.InstanceInfoCache(
                    network_info=network_model.NetworkInfo()))
            instance.create()
            if task_state is not None:
                ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
                objects.InstanceAction.action_start(
                    ctxt, instance.uuid, action, want_result=False)
                evidence = (n // 10) % 2 == 0
                if evidence:
                    objects.InstanceActionEvent.event_start(
                        ctxt, instance.uuid, 'compute_' + method,
                        want_result=False, host=HOST)
                self.candidates[instance.uuid] = task_state
        return size

    def _restore_states(self):
        """Put every candidate back in its transitional state."""
        for uuid, task_state in self.candidates.items():
            db_api.instance_update(self.context, uuid, {
                'task_state': task_state, 'vm_state': vm_states.ACTIVE,
                'power_state': power_state.RUNNING})

    # --- measure -----------------------------------------------------

    def _run(self, overlay, size):
        if overlay:
            nova_recover.install()
        else:
            nova_recover.uninstall()
        self._restore_states()
        manager = compute_manager.ComputeManager()
        instances = objects.InstanceList.get_by_host(
            self.context, HOST, expected_attrs=EXPECTED_ATTRS)
        assert len(instances) == size, len(instances)
        for instance in instances:
            manager.driver.instances[instance.uuid] = fake.FakeInstance(
                instance.name, power_state.RUNNING, instance.uuid)
        counts = {'healthy': 0, 'candidate': 0}
        current = {'kind': None}
        engine = db_api.get_engine()

        def count(conn, cursor, statement, *args):
            if current['kind'] and not statement.startswith(
                    ('BEGIN', 'SAVEPOINT', 'RELEASE')):
                counts[current['kind']] += 1

        healthy_s = 0.0
        sa.event.listen(engine, 'before_cursor_execute', count)
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for instance in instances:
                kind = 'candidate' if instance.task_state else 'healthy'
                current['kind'] = kind
                one = time.perf_counter()
                manager._init_instance(self.context, instance)
                if kind == 'healthy':
                    healthy_s += time.perf_counter() - one
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
            current['kind'] = None
            sa.event.remove(engine, 'before_cursor_execute', count)
            sweep.stop(manager)
            nova_recover.uninstall()
        return elapsed, healthy_s, counts

    def _measure(self, size):
        candidates = sum(1 for _ in self.candidates)
        healthy = size - candidates
        best = {}
        best_healthy = {}
        counts = {}
        # One run each to warm caches and imports, not measured.
        self._run(False, size)
        self._run(True, size)
        for _round in range(self.repeat):
            for overlay in (False, True):
                elapsed, healthy_s, seen = self._run(overlay, size)
                best[overlay] = min(elapsed, best.get(overlay, elapsed))
                best_healthy[overlay] = min(
                    healthy_s, best_healthy.get(overlay, healthy_s))
                counts[overlay] = seen
        return {
            'size': size, 'healthy': healthy, 'candidates': candidates,
            'stock_s': best[False], 'overlay_s': best[True],
            'ratio': best[True] / best[False],
            'healthy_ratio': best_healthy[True] / best_healthy[False],
            'extra_us': ((best_healthy[True] - best_healthy[False]) /
                         healthy * 1e6),
            'stock_sql_healthy': counts[False]['healthy'] / healthy,
            'overlay_sql_healthy': counts[True]['healthy'] / healthy,
            'stock_sql_candidate': (counts[False]['candidate'] /
                                    max(candidates, 1)),
            'overlay_sql_candidate': (counts[True]['candidate'] /
                                      max(candidates, 1)),
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--sizes', default='100,1000,5000',
                        help='comma-separated numbers of instances')
    parser.add_argument('--repeat', type=int, default=5,
                        help='runs per mode; the fastest counts')
    args = parser.parse_args(argv)
    Bench.sizes = tuple(sorted(int(s) for s in args.sizes.split(',')))
    Bench.repeat = args.repeat
    import unittest
    outcome = unittest.TextTestRunner(stream=open(os.devnull, 'w')).run(
        Bench())
    for _test, trace in outcome.errors + outcome.failures:
        print(trace, file=sys.stderr)
        return 1
    header = ('instances', 'candidates', 'stock s', 'overlay s', 'ratio',
              'ratio healthy only', 'extra us/healthy',
              'SQL/healthy stock', 'SQL/healthy overlay',
              'SQL/candidate stock', 'SQL/candidate overlay')
    print(' | '.join(header))
    for r in Bench.results:
        print(' | '.join([
            '%d' % r['size'], '%d' % r['candidates'],
            '%.3f' % r['stock_s'], '%.3f' % r['overlay_s'],
            '%.3f' % r['ratio'], '%.3f' % r['healthy_ratio'],
            '%.1f' % r['extra_us'],
            '%.2f' % r['stock_sql_healthy'],
            '%.2f' % r['overlay_sql_healthy'],
            '%.2f' % r['stock_sql_candidate'],
            '%.2f' % r['overlay_sql_candidate']]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
