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

Runs what ComputeManager.init_host does for the instances of one host
(InstanceList.get_by_host, then _init_instance for each) with N
instances, one in --every of them in a transitional state (half of
those with evidence that their request reached the host, half looking
queued), first with stock nova and then with the overlay, on the same
data.

It runs in production's shape (tests.fixtures.ProductionShape): no
database on the compute side, and every remotable call a round trip to
a real ConductorManager. The report counts those round trips per
healthy instance and per candidate, and the SQL statements that
compute-side code issues (none: it has no database). Two ratios:

* in-process: the whole run's wall time, the conductor's work included;
* at a stated latency per round trip (--latency-ms, 1 ms by default, a
  conductor on the same rack under light load): nova-compute's own CPU
  time (the conductor's side of each call taken out: a real nova-compute
  waits for it in another process) plus that latency for each round trip
  that start-up makes itself. This is what a production nova-compute
  pays.

The overlay reads the candidates' evidence ahead, in nova's pool
(read_ahead.py). Those round trips sleep the latency for real, beside
start-up, and are reported apart, not added. What they cost start-up is
counted in full: the readers' own CPU time (conductor taken out) as if
start-up spent it, and every moment start-up waited for a record. Both
are more than production pays: the readers' CPU mostly fits in
start-up's waits for its own round trips, and here the readers also
wait for an in-process conductor that shares the interpreter.

    python benchmarks/bench_init_host.py --sizes 100,1000,5000

Not a unit test: it uses nova's test fixtures only for a database, the
fake driver and the configuration.
"""

import argparse
import gc
import os
import sys
import time

# nova-compute's default concurrency mode in nova 34.
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', 'True')
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
from nova.virt import fake  # noqa: E402

import nova_recover  # noqa: E402
from nova_recover.recovery import read_ahead  # noqa: E402
from nova_recover.recovery import sweep  # noqa: E402
from nova_recover.tests import fixtures as recover_fixtures  # noqa: E402

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


def _kind_of(trip, kind):
    """Who a round trip is for: the instance, the start-up, the readers."""
    if trip.ahead:
        return 'ahead'
    if trip.target == 'InstanceList.get_by_filters':
        # read_ahead.start's list of candidates: once per start-up.
        return 'once'
    return kind


class Bench(test.TestCase):
    """A TestCase only for its fixtures: database, conf, fake driver."""

    sizes = (100,)
    repeat = 5
    every = 10
    latency_s = 0.001
    results = []

    def runTest(self):
        # nova's pool stays real: the read-ahead runs beside start-up.
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
            every = self.every
            if n % every == every // 2:
                task_state, action, method = CANDIDATES[
                    (n // every) % len(CANDIDATES)]
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
                # Every kind both ways: half reached the host, half not.
                evidence = (n // (every * len(CANDIDATES))) % 2 == 0
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
        for instance in objects.InstanceList.get_by_host(self.context, HOST):
            manager.driver.instances[instance.uuid] = fake.FakeInstance(
                instance.name, power_state.RUNNING, instance.uuid)
        trips = {'list': 0, 'healthy': 0, 'candidate': 0, 'once': 0,
                 'ahead': 0}
        compute_sql = [0]
        engine = db_api.get_engine()

        def count(conn, cursor, statement, *args):
            if recover_fixtures.on_compute_side():
                compute_sql[0] += 1

        healthy_s = 0.0
        waited = [0.0]
        take = read_ahead.take

        def timed_take(*args, **kwargs):
            started = time.perf_counter()
            try:
                return take(*args, **kwargs)
            finally:
                waited[0] += time.perf_counter() - started

        read_ahead.take = timed_take
        shape = recover_fixtures.ProductionShape()
        shape.setUp()
        shape.indirection.ahead_latency_s = self.latency_s
        sa.event.listen(engine, 'before_cursor_execute', count)
        gc.collect()
        gc.disable()
        try:
            indirection = shape.indirection
            start = time.perf_counter()
            cpu_start = time.thread_time()
            # What init_host reads before the loop, through the conductor
            # like everything else: part of what stock pays per instance.
            with shape.compute_side():
                instances = objects.InstanceList.get_by_host(
                    self.context, HOST, expected_attrs=EXPECTED_ATTRS)
            trips['list'] = len(shape.round_trips)
            assert len(instances) == size, len(instances)
            healthy_timed = 0
            for instance in instances:
                kind = 'candidate' if instance.task_state else 'healthy'
                before = len(shape.round_trips)
                # start-up's own CPU: the readers take turns with it for
                # the interpreter, which a real one would not notice.
                one = time.thread_time()
                manager._init_instance(self.context, instance)
                spent = time.thread_time() - one
                made = [_kind_of(trip, kind)
                        for trip in shape.round_trips[before:]]
                for made_for in made:
                    trips[made_for] += 1
                # The instance that lists the candidates pays for the whole
                # start-up; that is no healthy instance's cost.
                if kind == 'healthy' and 'once' not in made:
                    healthy_s += spent
                    healthy_timed += 1
            healthy_s /= max(healthy_timed, 1)
            elapsed = time.perf_counter() - start
            main_cpu_s = time.thread_time() - cpu_start
            # Start-up's own CPU, the readers' beside it, and its waits.
            readers_s = (indirection.ahead_cpu_s -
                         indirection.conductor_ahead_s)
            compute_s = (
                main_cpu_s -
                (indirection.conductor_s - indirection.conductor_ahead_s) +
                readers_s + waited[0])
        finally:
            read_ahead.take = take
            gc.enable()
            sa.event.remove(engine, 'before_cursor_execute', count)
            shape.cleanUp()
            sweep.stop(manager)
            nova_recover.uninstall()
        # What the read-ahead cost start-up: its waits, the readers' CPU.
        read_ahead_cost = (waited[0], readers_s)
        return (elapsed, compute_s, read_ahead_cost, healthy_s, trips,
                compute_sql[0])

    def _measure(self, size):
        candidates = len(self.candidates)
        healthy = size - candidates
        best = {}
        best_compute = {}
        best_healthy = {}
        best_read_ahead_cost = {}
        trips = {}
        compute_sql = 0
        if size == self.sizes[0]:
            # One run each to warm caches and imports, not measured.
            self._run(False, size)
            self._run(True, size)
        for _round in range(self.repeat):
            for overlay in (False, True):
                elapsed, compute_s, cost, healthy_s, seen, sql = self._run(
                    overlay, size)
                best[overlay] = min(elapsed, best.get(overlay, elapsed))
                if compute_s < best_compute.get(overlay, compute_s + 1):
                    best_compute[overlay] = compute_s
                    best_read_ahead_cost[overlay] = cost
                best_healthy[overlay] = min(
                    healthy_s, best_healthy.get(overlay, healthy_s))
                trips[overlay] = seen
                compute_sql += sql

        def in_production(overlay):
            # nova-compute's own time, plus waiting for each round trip it
            # makes itself; the conductor's work happens in another
            # process. The readers' CPU and start-up's waits for them are
            # in its time already.
            total = sum(n for kind, n in trips[overlay].items()
                        if kind != 'ahead')
            return best_compute[overlay] + total * self.latency_s

        return {
            'size': size, 'healthy': healthy, 'candidates': candidates,
            'stock_s': best[False], 'overlay_s': best[True],
            'ratio': best[True] / best[False],
            'stock_prod_s': in_production(False),
            'overlay_prod_s': in_production(True),
            'latency_ratio': in_production(True) / in_production(False),
            'extra_us': (best_healthy[True] - best_healthy[False]) * 1e6,
            'stock_trips_healthy': trips[False]['healthy'] / healthy,
            'overlay_trips_healthy': trips[True]['healthy'] / healthy,
            'stock_trips_candidate': (trips[False]['candidate'] /
                                      max(candidates, 1)),
            'overlay_trips_candidate': (trips[True]['candidate'] /
                                        max(candidates, 1)),
            'overlay_trips_ahead': (trips[True]['ahead'] /
                                    max(candidates, 1)),
            'overlay_trips_once': trips[True]['once'],
            'overlay_waited_s': best_read_ahead_cost[True][0],
            'overlay_readers_s': best_read_ahead_cost[True][1],
            'compute_sql': compute_sql,
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--sizes', default='100,1000,5000',
                        help='comma-separated numbers of instances')
    parser.add_argument('--repeat', type=int, default=5,
                        help='runs per mode; the fastest counts')
    parser.add_argument('--every', type=int, default=10,
                        help='one instance in this many is a candidate')
    parser.add_argument('--latency-ms', type=float, default=1.0,
                        help='conductor round-trip latency added to the '
                             'measured time for the second ratio')
    args = parser.parse_args(argv)
    Bench.latency_s = args.latency_ms / 1000.0
    Bench.sizes = tuple(sorted(int(s) for s in args.sizes.split(',')))
    Bench.repeat = args.repeat
    Bench.every = max(args.every, 1)
    import unittest
    outcome = unittest.TextTestRunner(stream=open(os.devnull, 'w')).run(
        Bench())
    for _test, trace in outcome.errors + outcome.failures:
        print(trace, file=sys.stderr)
        return 1
    latency = '%g ms/trip' % (Bench.latency_s * 1000)
    header = ('instances', 'candidates', 'in-process stock s',
              'in-process overlay s', 'in-process ratio',
              'stock s at ' + latency, 'overlay s at ' + latency,
              'ratio at ' + latency,
              'extra us/healthy', 'trips/healthy stock',
              'trips/healthy overlay', 'trips/candidate stock',
              'trips/candidate overlay', 'read-ahead trips/candidate',
              'trips/start-up overlay', 'waited for read-ahead s',
              'read-ahead CPU s', 'compute-side SQL')
    print(' | '.join(header))
    for r in Bench.results:
        print(' | '.join([
            '%d' % r['size'], '%d' % r['candidates'],
            '%.3f' % r['stock_s'], '%.3f' % r['overlay_s'],
            '%.3f' % r['ratio'], '%.3f' % r['stock_prod_s'],
            '%.3f' % r['overlay_prod_s'], '%.3f' % r['latency_ratio'],
            '%.1f' % r['extra_us'],
            '%.2f' % r['stock_trips_healthy'],
            '%.2f' % r['overlay_trips_healthy'],
            '%.2f' % r['stock_trips_candidate'],
            '%.2f' % r['overlay_trips_candidate'],
            '%.2f' % r['overlay_trips_ahead'],
            '%d' % r['overlay_trips_once'],
            '%.3f' % r['overlay_waited_s'],
            '%.3f' % r['overlay_readers_s'],
            '%d' % r['compute_sql']]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
