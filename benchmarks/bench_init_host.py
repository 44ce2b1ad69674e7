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
data (host_data.py).

It runs in production's shape (tests.fixtures.ProductionShape): no
database on the compute side, and every remotable call a round trip to
a real ConductorManager. The report counts those round trips per
healthy instance and per candidate, and the SQL statements that
compute-side code issues (none: it has no database).

By default (--conductor process) the conductor runs in a process of its
own, with the database (conductor_process.py), and each round trip
first waits --latency-ms (1 ms by default, a conductor on the same rack
under light load), as a network does. The times are then wall times,
as production pays them: nova-compute's own CPU, its waits for the
conductor, and the read-ahead's threads (read_ahead.py) taking turns
with start-up for the interpreter. The conductor's own CPU time for
each start-up is reported beside them: the work that the overlay adds
to nova-conductor. It is one process, so calls from nova-compute's
threads also wait for each other there, as they would for a conductor
with a single worker.

With --conductor in-process, the conductor shares the interpreter, so
the time is modelled instead: nova-compute's own CPU time (the
conductor's side of each call taken out), plus the latency for each
round trip that start-up makes itself, plus all of the read-ahead's CPU
time and start-up's waits for it, as if none of it overlapped. That is
an upper bound; the in-process wall times are reported beside it.

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

from nova.compute import manager as compute_manager  # noqa: E402
from nova.compute import power_state  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova.db.main import api as db_api  # noqa: E402
from nova import objects  # noqa: E402
from nova import test  # noqa: E402
from nova.virt import fake  # noqa: E402

import conductor_process  # noqa: E402  (beside this file)
import host_data  # noqa: E402
import nova_recover  # noqa: E402
from nova_recover.startup_recovery import read_ahead  # noqa: E402
from nova_recover.startup_recovery import sweep  # noqa: E402
from nova_recover.tests import fixtures as recover_fixtures  # noqa: E402
from nova_recover.tests import overlay_fixtures  # noqa: E402

HOST = host_data.HOST
EXPECTED_ATTRS = ['info_cache', 'metadata', 'system_metadata',
                  'numa_topology', 'flavor']


def _kind_of(trip, kind):
    """Who a round trip is for: the instance, the start-up, the readers."""
    if trip.ahead:
        return 'ahead'
    if trip.target == 'InstanceList.get_by_filters':
        # read_ahead.start's list of candidates: once per start-up.
        return 'once'
    return kind


class Bench(test.TestCase):
    """A TestCase only for its fixtures: conf, fake driver, database."""

    sizes = (100,)
    repeat = 5
    every = 10
    latency_s = 0.001
    conductor = 'process'
    results = []

    def runTest(self):
        # nova's pool stays real: the read-ahead runs beside start-up.
        self.flags(host=HOST)
        self.flags(compute_driver='fake.SmallFakeDriver')
        self.context = nova_context.get_admin_context()
        self.remote = self.data = None
        if self.conductor == 'process':
            self.remote = conductor_process.Conductor(self.every)
            self.addCleanup(self.remote.stop)
        else:
            self.data = host_data.HostData(self.every)
        for size in self.sizes:
            if self.remote:
                self.candidates = int(self.remote.request('populate',
                                                          str(size)))
            else:
                self.candidates = self.data.populate(size)
            self.results.append(self._measure(size))

    # --- measure -----------------------------------------------------

    def _shape(self):
        if self.remote:
            shape = recover_fixtures.ProductionShape(
                conductor_process.RemoteIndirection(self.remote,
                                                    self.latency_s),
                threads=overlay_fixtures.startup_threads())
            shape.setUp()
        else:
            shape = recover_fixtures.ProductionShape(
                threads=overlay_fixtures.startup_threads())
            shape.setUp()
            # The readers' round trips wait for real, beside start-up.
            shape.indirection.ahead_latency_s = self.latency_s
        return shape

    def _run(self, overlay, size):
        if overlay:
            nova_recover.install()
        else:
            nova_recover.uninstall()
        if self.remote:
            self.remote.request('restore')
        else:
            self.data.restore()
        manager = compute_manager.ComputeManager()
        trips = {'list': 0, 'healthy': 0, 'candidate': 0, 'once': 0,
                 'ahead': 0}
        compute_sql = [0]
        engine = db_api.get_engine()

        def count(conn, cursor, statement, *args):
            # With the conductor in its own process, this one has no
            # business with SQL at all.
            if self.remote or recover_fixtures.on_compute_side():
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

        shape = self._shape()
        try:
            indirection = shape.indirection
            with shape.compute_side():
                listed = objects.InstanceList.get_by_host(
                    self.context, HOST, expected_attrs=[])
            for instance in listed:
                manager.driver.instances[instance.uuid] = fake.FakeInstance(
                    instance.name, power_state.RUNNING, instance.uuid)
            # Measured from here: what the fake driver needed is no
            # start-up's.
            del shape.round_trips[:]
            indirection.conductor_s = indirection.conductor_ahead_s = 0.0
            read_ahead.take = timed_take
            sa.event.listen(engine, 'before_cursor_execute', count)
            gc.collect()
            gc.disable()
            conductor_start = self.remote.cpu_s() if self.remote else 0.0
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
                # Start-up's own CPU; the readers' is theirs.
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
            conductor_cpu_s = (self.remote.cpu_s() - conductor_start
                               if self.remote else 0.0)
            readers_s = (indirection.ahead_cpu_s -
                         indirection.conductor_ahead_s)
            if self.remote:
                production_s = elapsed
            else:
                # Start-up's own CPU, the readers' as if start-up spent it,
                # its waits for them, and the latency of its own trips.
                own_trips = sum(n for made_for, n in trips.items()
                                if made_for != 'ahead')
                conductor_s = (indirection.conductor_s -
                               indirection.conductor_ahead_s)
                production_s = (main_cpu_s - conductor_s + readers_s +
                                waited[0] + self.latency_s * own_trips)
        finally:
            read_ahead.take = take
            gc.enable()
            sa.event.remove(engine, 'before_cursor_execute', count)
            shape.cleanUp()
            sweep.stop(manager)
            nova_recover.uninstall()
        return {'elapsed_s': elapsed, 'production_s': production_s,
                'waited_s': waited[0], 'readers_s': readers_s,
                'healthy_s': healthy_s, 'trips': trips,
                'conductor_cpu_s': conductor_cpu_s,
                'compute_sql': compute_sql[0]}

    def _measure(self, size):
        candidates = self.candidates
        healthy = size - candidates
        best = {}
        best_elapsed = {}
        best_healthy = {}
        compute_sql = 0
        if size == self.sizes[0]:
            # One run each to warm caches and imports, not measured.
            self._run(False, size)
            self._run(True, size)
        for _round in range(self.repeat):
            for overlay in (False, True):
                run = self._run(overlay, size)
                if (overlay not in best or
                        run['production_s'] < best[overlay]['production_s']):
                    best[overlay] = run
                best_elapsed[overlay] = min(
                    run['elapsed_s'], best_elapsed.get(overlay, 1e9))
                best_healthy[overlay] = min(
                    run['healthy_s'], best_healthy.get(overlay, 1e9))
                compute_sql += run['compute_sql']
        stock, ours = best[False], best[True]
        return {
            'size': size, 'healthy': healthy, 'candidates': candidates,
            'stock_s': best_elapsed[False], 'overlay_s': best_elapsed[True],
            'ratio': best_elapsed[True] / best_elapsed[False],
            'stock_prod_s': stock['production_s'],
            'overlay_prod_s': ours['production_s'],
            'latency_ratio': ours['production_s'] / stock['production_s'],
            'extra_us': (best_healthy[True] - best_healthy[False]) * 1e6,
            'stock_trips_healthy': stock['trips']['healthy'] / healthy,
            'overlay_trips_healthy': ours['trips']['healthy'] / healthy,
            'stock_trips_candidate': (stock['trips']['candidate'] /
                                      max(candidates, 1)),
            'overlay_trips_candidate': (ours['trips']['candidate'] /
                                        max(candidates, 1)),
            'overlay_trips_ahead': (ours['trips']['ahead'] /
                                    max(candidates, 1)),
            'overlay_trips_once': ours['trips']['once'],
            'overlay_waited_s': ours['waited_s'],
            'overlay_readers_s': ours['readers_s'],
            'compute_sql': compute_sql,
            'stock_conductor_s': stock['conductor_cpu_s'],
            'overlay_conductor_s': ours['conductor_cpu_s'],
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
                        help='network latency of a conductor round trip')
    parser.add_argument('--conductor', choices=('process', 'in-process'),
                        default='process',
                        help='where nova-conductor runs: in a process of '
                             'its own (wall times), or in this one '
                             '(modelled times)')
    args = parser.parse_args(argv)
    Bench.latency_s = args.latency_ms / 1000.0
    Bench.sizes = tuple(sorted(int(s) for s in args.sizes.split(',')))
    Bench.repeat = args.repeat
    Bench.every = max(args.every, 1)
    Bench.conductor = args.conductor
    import unittest
    outcome = unittest.TextTestRunner(stream=open(os.devnull, 'w')).run(
        Bench())
    for _test, trace in outcome.errors + outcome.failures:
        print(trace, file=sys.stderr)
        return 1
    latency = '%g ms/trip' % (Bench.latency_s * 1000)
    in_process = args.conductor == 'in-process'
    print('conductor: %s; %s; best of %d' % (
        'in this process, times modelled' if in_process else
        'a process of its own, wall times', latency, Bench.repeat))
    header = ['instances', 'candidates']
    if in_process:
        header += ['in-process stock s', 'in-process overlay s',
                   'in-process ratio']
    header += ['stock s at ' + latency, 'overlay s at ' + latency,
               'ratio at ' + latency,
               'extra us/healthy', 'trips/healthy stock',
               'trips/healthy overlay', 'trips/candidate stock',
               'trips/candidate overlay', 'read-ahead trips/candidate',
               'trips/start-up overlay', 'waited for read-ahead s',
               'read-ahead CPU s', 'compute-side SQL']
    if not in_process:
        header += ['conductor CPU s stock', 'conductor CPU s overlay']
    print(' | '.join(header))
    for r in Bench.results:
        row = ['%d' % r['size'], '%d' % r['candidates']]
        if in_process:
            row += ['%.3f' % r['stock_s'], '%.3f' % r['overlay_s'],
                    '%.3f' % r['ratio']]
        row += [
            '%.3f' % r['stock_prod_s'],
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
            '%d' % r['compute_sql']]
        if not in_process:
            row += ['%.2f' % r['stock_conductor_s'],
                    '%.2f' % r['overlay_conductor_s']]
        print(' | '.join(row))
    return 0


if __name__ == '__main__':
    sys.exit(main())
