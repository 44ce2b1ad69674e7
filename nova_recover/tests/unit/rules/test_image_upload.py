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

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import test
from nova.virt import hardware

from nova_recover.startup_recovery import guest_facts
from nova_recover.tests.unit import base


class SavedMemoryFacts(guest_facts.UnknownGuestFacts):
    """A driver that reports the guest's memory saved, and restores it
    as asked (or fails to, with error).
    """

    def __init__(self, info, error=None):
        self.info = info
        self.error = error
        self.restored = []

    def has_saved_memory(self, instance):
        return True

    def restore_saved_memory(self, context, instance, paused):
        self.restored.append((instance, paused))
        if self.error is not None:
            raise self.error
        self.info.return_value = hardware.InstanceInfo(
            state=power_state.PAUSED if paused else power_state.RUNNING)


class ImageRecoveryTestCase(base.InitInstanceTestCase):
    """IMAGE_PENDING_UPLOAD and IMAGE_UPLOADING are cleared, then nova's
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

    def test_pending_upload(self):
        instance = self._assert_cleared(task_states.IMAGE_PENDING_UPLOAD)
        # CONTINUE: nova's own path plugged the VIFs of the running guest.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_uploading(self):
        instance = self._assert_cleared(task_states.IMAGE_UPLOADING)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_uploading_stopped(self):
        self._assert_cleared(task_states.IMAGE_UPLOADING,
                             vm_state=vm_states.STOPPED)
        self.mock_plug.assert_called_once()

    def test_uploading_error(self):
        """Stock nova 34 skips ERROR instances, so ERROR+IMAGE_UPLOADING

        stays stuck; the rule clears it and nova's path then leaves the
        ERROR instance alone.
        """
        self._assert_cleared(task_states.IMAGE_UPLOADING,
                             vm_state=vm_states.ERROR)
        self.mock_plug.assert_not_called()

    def test_pending_upload_error(self):
        self._assert_cleared(task_states.IMAGE_PENDING_UPLOAD,
                             vm_state=vm_states.ERROR)

    def test_pending_upload_notes_the_snapshot_interrupted(self):
        """Nothing was uploaded: the request's action says so.

        snapshot_instance had finished its event with Success at the
        hand-off to the long-task pool, and that was all the owner saw.
        """
        instance = self._assert_cleared(task_states.IMAGE_PENDING_UPLOAD)
        self.mock_note_snapshot.assert_called_once_with(
            self.compute, self.context, instance)
        # An event still open (nova 31's) is closed as interrupted.
        self.mock_close.assert_called_once_with(
            self.compute, self.context, instance,
            task_states.IMAGE_PENDING_UPLOAD, completed=())

    def test_uploading_with_nothing_unfinished_is_not_noted(self):
        # The upload finished (glance has the image whole) and only its
        # record died: the Success the owner sees is true, and an event
        # still open (nova 31's) is finished as that Success.
        instance = self._assert_cleared(task_states.IMAGE_UPLOADING)
        self.mock_note_snapshot.assert_not_called()
        self.mock_close.assert_called_once_with(
            self.compute, self.context, instance,
            task_states.IMAGE_UPLOADING, completed=('snapshot_instance',))

    def test_uploading_with_unfinished_image_notes_it(self):
        self.compute.image_api.get_all.return_value = [
            {'id': uuids.half_image, 'status': 'saving',
             'owner': self.context.project_id,
             'properties': {'instance_uuid': uuids.instance,
                            'image_type': 'snapshot'}}]
        with mock.patch.object(self.compute.image_api, 'delete') as delete:
            instance = self._assert_cleared(task_states.IMAGE_UPLOADING)
        delete.assert_called_once_with(self.context, uuids.half_image)
        self.mock_note_snapshot.assert_called_once_with(
            self.compute, self.context, instance)
        self.mock_close.assert_called_once_with(
            self.compute, self.context, instance,
            task_states.IMAGE_UPLOADING, completed=())

    def test_backup_is_not_noted(self):
        # backup_instance hands nothing off: its own event is still open
        # and close_interrupted says it was interrupted.
        self._assert_cleared(task_states.IMAGE_BACKUP)
        self.mock_note_snapshot.assert_not_called()

    def test_note_failure_keeps_the_recovery(self):
        self.mock_note_snapshot.side_effect = test.TestingException(
            'conductor down')
        instance = self._assert_cleared(task_states.IMAGE_PENDING_UPLOAD)
        self.mock_note_snapshot.assert_called_once_with(
            self.compute, self.context, instance)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_lost_race_leaves_instance(self):
        instance = self._instance(task_states.IMAGE_UPLOADING)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='image_uploading',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.IMAGE_UPLOADING)
        # The request that won goes on; nova's path does not run for it.
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()
        self.mock_note_snapshot.assert_not_called()

    def test_instance_gone_leaves_it(self):
        instance = self._instance(task_states.IMAGE_PENDING_UPLOAD)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.InstanceNotFound(
                    instance_id=instance.uuid)):
            self.compute._init_instance(self.context, instance)
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_save_failure_sets_error(self):
        instance = self._instance(task_states.IMAGE_UPLOADING)
        with mock.patch.object(
                instance, 'save',
                side_effect=[test.TestingException('db hiccup'),
                             None]) as mock_save:
            self.compute._init_instance(self.context, instance)
        first, second = mock_save.call_args_list
        self.assertEqual(
            mock.call(expected_task_state=task_states.IMAGE_UPLOADING), first)
        # The failed save had already cleared the task in memory; the DB
        # still holds the original, which the error save expects.
        self.assertEqual({task_states.IMAGE_UPLOADING, None},
                         set(second[1]['expected_task_state']))
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'snapshot interrupted by nova-compute '
                                   'restart: db hiccup')


class ColdSnapshotRecoveryTestCase(base.InitInstanceTestCase):
    """A cold snapshot left the guest off with its memory saved."""

    _assert_cleared = ImageRecoveryTestCase._assert_cleared

    def setUp(self):
        super().setUp()
        self.mock_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(
                state=power_state.SHUTDOWN))).mock
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.image_api, 'get_all', return_value=[]))
        self.facts = SavedMemoryFacts(self.mock_info)
        self.useFixture(test.fixtures.MockPatchObject(
            guest_facts, 'for_driver', return_value=self.facts))

    def test_active_guest_is_started_from_saved_memory(self):
        instance = self._assert_cleared(task_states.IMAGE_PENDING_UPLOAD)
        self.assertEqual([(instance, False)], self.facts.restored)
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.mock_note_snapshot.assert_called_once_with(
            self.compute, self.context, instance)

    def test_paused_guest_is_started_paused(self):
        instance = self._assert_cleared(task_states.IMAGE_UPLOADING,
                                        vm_state=vm_states.PAUSED)
        self.assertEqual([(instance, True)], self.facts.restored)
        self.assertEqual(power_state.PAUSED, instance.power_state)

    def test_suspended_guest_keeps_its_suspend(self):
        instance = self._assert_cleared(task_states.IMAGE_UPLOADING,
                                        vm_state=vm_states.SUSPENDED)
        self.assertEqual([], self.facts.restored)
        self.assertEqual(power_state.SHUTDOWN, instance.power_state)

    def test_failed_start_errors_and_keeps_saved_memory(self):
        self.facts.error = test.TestingException('no qemu')
        instance = self._instance(task_states.IMAGE_PENDING_UPLOAD)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.IMAGE_PENDING_UPLOAD)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance, 'snapshot interrupted by nova-compute '
                                   'restart: the guest could not be started '
                                   'from the memory the snapshot saved, '
                                   'which is kept: no qemu')
        self.mock_plug.assert_not_called()
