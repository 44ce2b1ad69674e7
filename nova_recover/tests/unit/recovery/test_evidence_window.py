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

"""How far back start-up reads an instance's actions, and what it skips.

Reading is bounded (evidence.MAX_ACTIONS compute actions, READ_LIMIT in
all) because start-up reads every candidate's actions through the
conductor: these tests hold the reader to that bound and to the actions
it skips, lock and unlock among them. They come with the read-ahead,
which reads every candidate's evidence at once, as the tests of what
reading costs do.
"""

from unittest import mock

from nova.compute import instance_actions
from nova.compute import task_states
from nova import objects

from nova_recover.startup_recovery import evidence
from nova_recover.tests.unit.recovery import test_evidence

COMPUTE_ACTION = test_evidence.COMPUTE_ACTION


class EvidenceWindowTestCase(test_evidence.EvidenceBase):
    """The window of actions the reader reads, and past it."""

    def test_request_too_far_back_is_unreadable(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(evidence.MAX_ACTIONS):
            self._request(instance, COMPUTE_ACTION)
        del self.shape.round_trips[:]
        ex = self.assertRaises(evidence.TooFarBack, self.queued, instance)
        self.assertIsInstance(ex, evidence.Unreadable)
        # Dated, for the sweep; told from the actions alone.
        self.assertIsNotNone(ex.requested)
        self.assertEqual(['InstanceActionList.get_by_instance_uuid'],
                         [trip.target for trip in self.shape.round_trips])

    def test_died_request_then_locks_and_unlocks_is_readable(self):
        """lock and unlock run in the API: no compute event to read, and

        no reason to give up on the request below them.
        """
        instance = self._instance(task_states.POWERING_OFF)
        ctxt = self._request(instance, instance_actions.STOP)
        self._event(ctxt, instance, 'stop_instance')
        for _ in range(evidence.MAX_ACTIONS + 1):
            self._request(instance, instance_actions.LOCK)
            self._request(instance, instance_actions.UNLOCK)
        del self.shape.round_trips[:]
        self.assertFalse(self.queued(instance))
        # The actions, then the events of the request's own action only.
        self.assertEqual(
            ['InstanceActionList.get_by_instance_uuid',
             'InstanceActionEventList.get_by_action'],
            [trip.target for trip in self.shape.round_trips])

    def test_queued_request_then_locks_is_queued(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(evidence.MAX_ACTIONS + 1):
            self._request(instance, instance_actions.LOCK)
        self.assertTrue(self.queued(instance))

    def test_api_only_actions_are_recorded_by_the_api_alone(self):
        """What API_ONLY names never reaches a compute manager method."""
        self.assertEqual(
            {instance_actions.LOCK, instance_actions.UNLOCK,
             instance_actions.RESET_STATE}, set(evidence.API_ONLY))
        for action in evidence.API_ONLY:
            self.assertNotIn(action, {name for operation in
                                      evidence.API_SET.values()
                                      for name in operation.actions})

    def test_actions_are_read_with_a_limit(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        with mock.patch.object(
                objects.InstanceActionList, 'get_by_instance_uuid',
                wraps=objects.InstanceActionList.get_by_instance_uuid
        ) as get:
            self.assertTrue(self.queued(instance))
        # Asked by nova-compute, then served by nova-conductor.
        self.assertNotEqual([], get.call_args_list)
        for call in get.call_args_list:
            self.assertEqual(instance.uuid, call[0][1])
            self.assertEqual(evidence.READ_LIMIT, call[1].get('limit'))

    def test_request_beyond_the_limit_is_too_far_back(self):
        """A full list without the request is not "no action"."""
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(3):
            self._request(instance, instance_actions.LOCK)
        with mock.patch.object(evidence, 'READ_LIMIT', 3):
            ex = self.assertRaises(evidence.TooFarBack, self.queued,
                                   instance)
            self.assertIsNone(ex.requested)
            # One action fewer and the request is among those read.
            with mock.patch.object(evidence, 'READ_LIMIT', 4):
                self.assertTrue(self.queued(instance))

    def test_short_list_without_the_request_has_no_action(self):
        instance = self._instance(task_states.PAUSING)
        for _ in range(3):
            self._request(instance, instance_actions.LOCK)
        with mock.patch.object(evidence, 'READ_LIMIT', 4):
            self.assertTrue(self.queued(instance))
