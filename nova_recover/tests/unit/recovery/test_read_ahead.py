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

from unittest import mock

import oslo_messaging as messaging

from nova.compute import instance_actions
from nova.compute import task_states
from nova.compute import vm_states
from nova import objects
from nova.tests import fixtures as nova_fixtures

from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import read_ahead
from nova_recover.startup_recovery import state as recovery_state
from nova_recover.tests.unit.recovery import test_evidence

HOST = test_evidence.HOST
COMPUTE_ACTION = test_evidence.COMPUTE_ACTION


class ReadAheadTestCase(test_evidence.EvidenceBase):
    """Start-up reads every candidate's evidence at once, then takes it.

    Readers run in nova's pool; most tests make the pool synchronous so
    that what was read ahead is known when the test looks.
    """

    THREADS = ((read_ahead, '_read', True),)

    def setUp(self):
        super().setUp()
        self.flags(host=HOST)

    def _start(self, synchronous=True):
        if synchronous:
            self.useFixture(nova_fixtures.SpawnIsSynchronousFixture())
        with self.shape.compute_side():
            read_ahead.start(self.manager, self.context)

    def _take(self, instance):
        with self.shape.compute_side():
            return read_ahead.take(self.manager, instance)

    def _candidates(self):
        reached = self._instance(task_states.PAUSING)
        self._event(self._request(reached, instance_actions.PAUSE), reached,
                    'pause_instance')
        queued = self._instance(task_states.POWERING_OFF)
        self._request(queued, instance_actions.STOP)
        return reached, queued

    def test_one_list_then_the_reads_beside_start_up(self):
        reached, queued = self._candidates()
        healthy = self._instance(None)
        building = self._instance(task_states.PAUSING,
                                  vm_state=vm_states.BUILDING)
        elsewhere = self._instance(task_states.PAUSING, host='host2')
        self._start()
        self.assertEqual(
            [('InstanceList.get_by_filters', False)] +
            [('InstanceActionList.get_by_instance_uuid', True),
             ('InstanceActionEventList.get_by_action', True)] * 2,
            [(trip.target, trip.ahead) for trip in self.shape.round_trips])
        del self.shape.round_trips[:]
        with self.shape.compute_side():
            self.assertFalse(evidence.queued(
                self.manager, self.context, reached, self._take(reached)))
            self.assertTrue(evidence.queued(
                self.manager, self.context, queued, self._take(queued)))
        # What they need no evidence for, or is not ours, was not read.
        for instance in (healthy, building, elsewhere):
            self.assertIsNone(self._take(instance))
        self.assertEqual([], self.shape.round_trips)

    def test_once_per_start_up(self):
        self._candidates()
        self._start()
        del self.shape.round_trips[:]
        self._start()
        self.assertEqual([], self.shape.round_trips)

    def test_each_record_is_taken_once(self):
        reached, _queued = self._candidates()
        self._start()
        self.assertIsNotNone(self._take(reached))
        self.assertIsNone(self._take(reached))

    def test_changed_instance_is_read_again(self):
        reached, _queued = self._candidates()
        self._start()
        # A hard reboot over the stuck pause, cast while this host starts.
        reached.task_state = task_states.REBOOTING_HARD
        reached.save()
        self._request(reached, instance_actions.REBOOT)
        self.assertIsNone(self._take(reached))
        self.assertTrue(self.queued(reached))

    def test_failed_read_is_read_again(self):
        reached, queued = self._candidates()
        load = evidence.load

        def fail_for_reached(context, instance, names):
            if instance.uuid == reached.uuid:
                raise evidence.Unreadable('conductor down')
            return load(context, instance, names)

        with mock.patch.object(evidence, 'load',
                               side_effect=fail_for_reached):
            self._start()
        self.assertIsNone(self._take(reached))
        self.assertIsNotNone(self._take(queued))
        self.assertFalse(self.queued(reached))

    def test_too_far_back_is_taken_as_read(self):
        """Reading again would only find the same: no second read."""
        reached, queued = self._candidates()
        for _ in range(evidence.MAX_ACTIONS):
            self._request(queued, COMPUTE_ACTION)
        self._start()
        del self.shape.round_trips[:]
        self.assertRaises(evidence.TooFarBack, self._take, queued)
        self.assertIsNotNone(self._take(reached))
        self.assertEqual([], self.shape.round_trips)

    def test_list_failure_reads_nothing_ahead(self):
        reached, _queued = self._candidates()
        with mock.patch.object(
                objects.InstanceList, 'get_by_filters',
                side_effect=messaging.MessagingTimeout('conductor down')):
            self._start()
        self.assertIsNone(self._take(reached))
        # Not asked again in this start-up: each instance reads its own.
        del self.shape.round_trips[:]
        self._start()
        self.assertEqual([], self.shape.round_trips)

    def test_readers_in_nova_pool(self):
        candidates = []
        for _ in range(read_ahead.READERS + 2):
            candidates.extend(self._candidates())
        self._start(synchronous=False)
        with self.shape.compute_side():
            answers = [evidence.queued(self.manager, self.context, instance,
                                       self._take(instance))
                       for instance in candidates]
        self.assertEqual([False, True] * (read_ahead.READERS + 2), answers)
        # Every read was made by a reader, none by start-up itself.
        self.assertEqual(
            {('InstanceList.get_by_filters', False),
             ('InstanceActionList.get_by_instance_uuid', True),
             ('InstanceActionEventList.get_by_action', True)},
            {(trip.target, trip.ahead) for trip in self.shape.round_trips})

    def test_no_round_trip_for_states_that_need_no_evidence(self):
        instances = [
            self._instance(None),
            self._instance(None, vm_state=vm_states.STOPPED),
            self._instance(task_states.DELETING),
            self._instance(task_states.SPAWNING, vm_state=vm_states.BUILDING),
            self._instance(task_states.PAUSING, vm_state=vm_states.BUILDING),
            self._instance(task_states.IMAGE_UPLOADING),
            self._instance(task_states.REBOOT_STARTED),
            self._instance(task_states.RESIZE_FINISH),
        ]
        for instance in instances:
            self.assertFalse(self.queued(instance))
        self.assertEqual([], self.shape.round_trips)
        self.assertEqual({}, recovery_state.of(self.manager).evidence)

    def test_two_round_trips_per_candidate(self):
        for task_state, action, method in (
                (task_states.PAUSING, instance_actions.PAUSE,
                 'pause_instance'),
                (task_states.REBOOTING, instance_actions.REBOOT, None),
                (task_states.POWERING_OFF, instance_actions.STOP,
                 'stop_instance')):
            instance = self._instance(task_state)
            ctxt = self._request(instance, action)
            if method:
                self._event(ctxt, instance, method)
            del self.shape.round_trips[:]
            self.assertEqual(method is None, self.queued(instance))
            self.assertEqual(
                ['InstanceActionList.get_by_instance_uuid',
                 'InstanceActionEventList.get_by_action'],
                [trip.target for trip in self.shape.round_trips])

    def test_one_round_trip_without_an_action(self):
        instance = self._instance(task_states.PAUSING)
        self.assertTrue(self.queued(instance))
        self.assertEqual(1, len(self.shape.round_trips))

    def test_worst_case_reads_every_newer_action(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(evidence.MAX_ACTIONS - 1):
            self._request(instance, COMPUTE_ACTION)
            # Neither read nor counted.
            self._request(instance, instance_actions.LOCK)
        self.assertTrue(self.queued(instance))
        self.assertEqual(1 + evidence.MAX_ACTIONS,
                         len(self.shape.round_trips))
