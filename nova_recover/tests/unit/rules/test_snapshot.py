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

from nova.compute import instance_actions
from nova.compute import manager as compute_manager
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import test
from nova.virt import hardware

from nova_recover.tests import fixtures as sr_fixtures
from nova_recover.tests import overlay_fixtures
from nova_recover.tests.unit import base
from nova_recover.tests.unit.recovery import test_evidence
from nova_recover.tests.unit.recovery import test_queued


class SnapshotPendingRecoveryTestCase(base.InitInstanceTestCase):
    """IMAGE_SNAPSHOT_PENDING and IMAGE_SNAPSHOT are cleared, then nova's
    own start-up path (plug VIFs, resume) runs for the instance.
    """

    def setUp(self):
        super().setUp()
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(state=power_state.RUNNING)))
        # No image left behind by the upload to clean up in glance.
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.image_api, 'get_all', return_value=[]))

    def _assert_cleared(self, task_state, vm_state=vm_states.ACTIVE):
        instance = self._instance(task_state, vm_state=vm_state)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.mock_fault.assert_not_called()
        return instance

    def test_snapshot_pending(self):
        instance = self._assert_cleared(task_states.IMAGE_SNAPSHOT_PENDING)
        # CONTINUE: nova's own path plugged the VIFs of the running guest.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_snapshot(self):
        instance = self._assert_cleared(task_states.IMAGE_SNAPSHOT)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        # Its compute_snapshot_instance event ended Success at the
        # hand-off to the long-task pool: the action must tell otherwise.
        self.mock_note_snapshot.assert_called_once_with(
            self.compute, self.context, instance)

    def _cold(self, vm_state):
        self.compute.driver.get_info.return_value = hardware.InstanceInfo(
            state=power_state.SHUTDOWN)
        instance = self._instance(task_states.IMAGE_SNAPSHOT,
                                  vm_state=vm_state)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.IMAGE_SNAPSHOT)
        self.assertIsNone(instance.task_state)
        self.assertEqual(power_state.SHUTDOWN, instance.power_state)
        return instance

    def test_cold_snapshot_left_the_guest_off(self):
        """The guest a cold snapshot shut off is recorded as stopped."""
        for vm_state in (vm_states.ACTIVE, vm_states.PAUSED):
            instance = self._cold(vm_state)
            self.assertEqual(vm_states.STOPPED, instance.vm_state)

    def test_cold_snapshot_of_suspended_instance_stays_suspended(self):
        """libvirt shows a suspended guest as shut off; starting it as a
        stopped one would drop its saved memory.
        """
        instance = self._cold(vm_states.SUSPENDED)
        self.assertEqual(vm_states.SUSPENDED, instance.vm_state)

    def test_snapshot_stopped(self):
        self._assert_cleared(task_states.IMAGE_SNAPSHOT,
                             vm_state=vm_states.STOPPED)
        self.mock_plug.assert_called_once()

    def test_snapshot_error(self):
        """Stock nova 34 skips ERROR instances, so ERROR+IMAGE_SNAPSHOT

        stays stuck; the rule clears it and nova's path then leaves the
        ERROR instance alone.
        """
        self._assert_cleared(task_states.IMAGE_SNAPSHOT,
                             vm_state=vm_states.ERROR)
        self.mock_plug.assert_not_called()

    def test_snapshot_pending_error(self):
        self._assert_cleared(task_states.IMAGE_SNAPSHOT_PENDING,
                             vm_state=vm_states.ERROR)

    def test_lost_race_leaves_instance(self):
        instance = self._instance(task_states.IMAGE_SNAPSHOT)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='image_snapshot',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.IMAGE_SNAPSHOT)
        # The request that won goes on; nova's path does not run for it.
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()
        self.mock_note_snapshot.assert_not_called()

    def test_instance_gone_leaves_it(self):
        instance = self._instance(task_states.IMAGE_SNAPSHOT_PENDING)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.InstanceNotFound(
                    instance_id=instance.uuid)):
            self.compute._init_instance(self.context, instance)
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_save_failure_sets_error(self):
        instance = self._instance(task_states.IMAGE_SNAPSHOT)
        with mock.patch.object(
                instance, 'save',
                side_effect=[test.TestingException('db hiccup'),
                             None]) as mock_save:
            self.compute._init_instance(self.context, instance)
        first, second = mock_save.call_args_list
        self.assertEqual(
            mock.call(expected_task_state=task_states.IMAGE_SNAPSHOT), first)
        # The failed save had already cleared the task in memory; the DB
        # still holds the original, which the error save expects.
        self.assertEqual({task_states.IMAGE_SNAPSHOT, None},
                         set(second[1]['expected_task_state']))
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'snapshot interrupted by nova-compute '
                                   'restart: db hiccup')


class SnapshotEvidenceTestCase(test_evidence.EvidenceBase):
    """A snapshot's only event ends at the hand-off: start-up notes it.

    Against the database, as nova-compute runs: the rule clears the task
    and the gate writes the event that says the snapshot was cut short.
    """

    def _start_up_snapshot(self, task_state):
        """Start-up of a snapshot whose event ended at the hand-off."""
        self.useFixture(overlay_fixtures.Overlay())
        self.useFixture(sr_fixtures.ProductionShape(
            threads=test_queued.STARTUP_THREADS))
        self.flags(host=test_evidence.HOST)
        compute = compute_manager.ComputeManager()
        instance = self._instance(task_state)
        ctxt = self._request(instance, instance_actions.CREATE_IMAGE)
        self._event(ctxt, instance, 'snapshot_instance', finish=True)
        with mock.patch.object(compute.image_api, 'get_all',
                               return_value=[]):
            compute._init_instance(self.context, instance)
        instance.refresh()
        self.assertIsNone(instance.task_state)
        return [(event.event, event.result)
                for event in self._events(instance)]

    def test_start_up_notes_a_snapshot_interrupted_after_hand_off(self):
        self.assertEqual(
            [('compute_snapshot_instance', 'Success'),
             ('compute_snapshot_interrupted', 'Error')],
            self._start_up_snapshot(task_states.IMAGE_SNAPSHOT))

    def test_start_up_leaves_an_uploaded_snapshot_successful(self):
        # Nothing unfinished in glance: the upload was done.
        self.assertEqual(
            [('compute_snapshot_instance', 'Success')],
            self._start_up_snapshot(task_states.IMAGE_UPLOADING))
