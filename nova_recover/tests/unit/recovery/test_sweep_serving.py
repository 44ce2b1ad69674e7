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

"""The sweep and the moment nova-compute starts reading its queue.

ComputeManager.post_start_hook, which nova's Service.start calls once
the manager's RPC server(s) run, tells start-up recovery so
(engine.serving, then every gate's serving): only from then on can a
request still on the queue arrive, so the sweep counts a held request's
grace from there, and takes nothing as lost before.
"""

import threading
import time

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects
from nova import test

from nova_recover.startup_recovery import state as recovery_state
from nova_recover.startup_recovery import sweep
from nova_recover.tests import fixtures as sr_fixtures
from nova_recover.tests.unit.recovery import test_sweep

HOST = test_sweep.HOST
GRACE = test_sweep.GRACE
BOOT = test_sweep.BOOT


class ServingTestCase(test_sweep.SweepBase):
    """Nothing is lost before nova-compute reads its queue (serving)."""

    def test_nothing_is_lost_before_the_queue_is_read(self):
        """An outage longer than the grace: the request is long past it

        when start-up leaves the instance, but nova has not started the
        RPC server yet, so the request may well be the next message.
        """
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance, serving=False)
        self.assertIsNone(sweep.served(self.manager))
        del self.shape.round_trips[:]
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE * 10))
        self.assertEqual([], self.recovered)
        # Not worth a round trip either.
        self.assertEqual([], self.shape.round_trips)
        # The RPC server starts; the grace counts from here.
        self._serving_at(GRACE * 10)
        self.assertEqual(0, sweep.served(self.manager))
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE * 11 - 1))
        self.assertEqual([], self.recovered)
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE * 11))
        self.assertEqual([instance.uuid], self.recovered)

    def test_request_newer_than_serving_gets_its_grace(self):
        """It cannot have waited on the queue longer than it exists."""
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance, serving=False)
        self._serving_at(-GRACE * 10)
        # Action times come back to the second: a second either side.
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE - 2))
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE + 1))

    def test_serving_wakes_the_sweep(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance, serving=False)
        state = recovery_state.of(self.manager).sweep
        self.assertFalse(state.wakeup.is_set())
        sweep.serving(self.manager)
        self.assertTrue(state.wakeup.is_set())
        self.assertEqual(BOOT, state.serving_started)

    def test_serving_without_anything_watched(self):
        other = test_sweep.FakeManager()
        sweep.serving(other)
        state = recovery_state.of(other).sweep
        self.assertEqual(BOOT, state.serving_started)
        self.assertFalse(state.wakeup.is_set())
        self.mock_thread.assert_not_called()
        self.assertEqual({}, sweep.sweep_once(other, self.context))


class SweepThreadTestCase(test.TestCase):
    """The background pass runs on its own and ends with the service."""

    def setUp(self):
        super().setUp()
        self.useFixture(sr_fixtures.ProductionShape(
            threads=[(sweep, 'sweep_once', False)]))
        self.context = nova_context.get_admin_context()
        self.manager = test_sweep.FakeManager()
        self.recovered = []
        self.instance = objects.Instance(
            self.context, uuid=uuids.instance, host=HOST,
            task_state=task_states.PAUSING, vm_state=vm_states.ACTIVE,
            project_id='p', user_id='u')
        self.instance.create()

    def _recover(self, manager, context, instance):
        self.recovered.append(instance.uuid)

    def test_thread_recovers_and_ends(self):
        self.flags(queued_request_grace=0, sweep_interval=1,
                   group='recover')
        sweep.watch(self.manager, self.instance, self._recover)
        sweep.serving(self.manager)
        thread = recovery_state.of(self.manager).sweep.thread
        self.assertIsInstance(thread, threading.Thread)
        deadline = time.time() + 10
        while not self.recovered and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual([self.instance.uuid], self.recovered)
        thread.join(5)
        self.assertFalse(thread.is_alive())

    def test_thread_waits_for_serving_then_wakes(self):
        """No pass recovers before serving; serving wakes a pass at once.

        The interval is an hour: only serving's wake-up can bring the
        pass that recovers it within the test.
        """
        self.flags(queued_request_grace=0, sweep_interval=3600,
                   group='recover')
        sweep.watch(self.manager, self.instance, self._recover)
        state = recovery_state.of(self.manager).sweep
        thread = state.thread
        # Passes before serving (woken by hand) leave it waiting.
        state.wakeup.set()
        time.sleep(0.5)
        self.assertEqual([], self.recovered)
        sweep.serving(self.manager)
        deadline = time.time() + 10
        while not self.recovered and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual([self.instance.uuid], self.recovered)
        thread.join(5)
        self.assertFalse(thread.is_alive())

    def test_thread_stops_with_the_service(self):
        self.flags(queued_request_grace=3600, sweep_interval=1,
                   group='recover')
        sweep.watch(self.manager, self.instance, self._recover)
        thread = recovery_state.of(self.manager).sweep.thread
        self.manager.instance_events._events = None
        thread.join(5)
        self.assertFalse(thread.is_alive())
        self.assertEqual([], self.recovered)
