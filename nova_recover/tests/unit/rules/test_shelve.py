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

import datetime
from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import objects
from nova import test

from nova_recover.startup_recovery import releases
from nova_recover.tests.unit.rules import shelve_base

SHELVED_KEYS = shelve_base.SHELVED_KEYS


class ShelveRecoveryTestCase(shelve_base.ShelveTestCase):

    def _assert_rolled_back(self, task_state, guest, vm_state,
                            old_vm_state=vm_states.ACTIVE):
        self._guest(guest)
        instance = self._instance(task_state, vm_state=old_vm_state,
                                  system_metadata=dict(SHELVED_KEYS))
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.assertEqual(guest, instance.power_state)
        # Stale keys of an earlier shelve describe no image of this one.
        for key in SHELVED_KEYS:
            self.assertNotIn(key, instance.system_metadata)
        self.image_api.delete.assert_called_once_with(
            self.context, uuids.half_image)
        self.mock_offload.assert_not_called()
        self.mock_fault.assert_not_called()
        return instance

    def test_shelving_guest_still_runs(self):
        instance = self._assert_rolled_back(
            task_states.SHELVING, power_state.RUNNING, vm_states.ACTIVE)
        # CONTINUE: nova's own path plugs the VIFs of the kept guest.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_pending_upload_guest_powered_off(self):
        self._assert_rolled_back(task_states.SHELVING_IMAGE_PENDING_UPLOAD,
                                 power_state.SHUTDOWN, vm_states.STOPPED)

    def test_uploading_guest_powered_off(self):
        self._assert_rolled_back(task_states.SHELVING_IMAGE_UPLOADING,
                                 power_state.SHUTDOWN, vm_states.STOPPED)

    def test_shelving_paused_guest_stays_paused(self):
        self._assert_rolled_back(task_states.SHELVING, power_state.PAUSED,
                                 vm_states.PAUSED,
                                 old_vm_state=vm_states.PAUSED)

    def test_shelving_volume_backed_guest_gone_finishes_offload(self):
        self._guest(power_state.NOSTATE)
        self.mock_volume_backed.return_value = True
        instance = self._instance(task_states.SHELVING)
        mock_save = self._recover(instance)
        self.mock_offload.assert_called_once_with(
            self.context, instance, clean_shutdown=True, accel_uuids=[])
        mock_save.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_shelving_image_backed_guest_gone_errors(self):
        self._guest(power_state.NOSTATE)
        instance = self._instance(task_states.SHELVING_IMAGE_UPLOADING)
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.SHELVING_IMAGE_UPLOADING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'shelve interrupted by nova-compute '
                                   'restart: the guest is gone')
        self.image_api.delete.assert_called_once_with(
            self.context, uuids.half_image)
        self.mock_offload.assert_not_called()

    def test_lost_race_raises_nothing(self):
        self._guest(power_state.RUNNING)
        instance = self._instance(task_states.SHELVING)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='shelving',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SHELVING)
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_save_failure_errors_with_fault(self):
        self._guest(power_state.RUNNING)
        instance = self._instance(task_states.SHELVING_IMAGE_UPLOADING)
        with mock.patch.object(
                instance, 'save',
                side_effect=[test.TestingException('db hiccup'), None]):
            self.compute._init_instance(self.context, instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'shelve interrupted by nova-compute '
                                   'restart: db hiccup')


class ShelveUploadedTestCase(shelve_base.ShelveTestCase):
    """The shelve's image is whole in glance; only its record died."""

    STARTED = datetime.datetime(2026, 3, 1, 12, 0, 0, 500000,
                                tzinfo=datetime.timezone.utc)

    def setUp(self):
        super().setUp()
        self.flags(shelved_offload_time=-1)
        # What api.shelve created: glance gives created_at in seconds,
        # here the second the action started in.
        self.shelved = self._image(uuids.uploaded,
                                   created_at='2026-03-01T12:00:00Z')
        self.image_api.get_all.return_value = [self.shelved]
        self.mock_actions = self.useFixture(test.fixtures.MockPatchObject(
            objects.InstanceActionList, 'get_by_instance_uuid',
            return_value=[self._action('shelve', self.STARTED),
                          self._action('lock', self.STARTED)])).mock
        self.mock_power_off = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, '_power_off_instance')).mock

    def _image(self, image_id, created_at, name='web-shelved',
               status='active', owner=None, image_type='snapshot'):
        return {'id': image_id, 'name': name, 'status': status,
                'created_at': created_at,
                'owner': owner or self.context.project_id,
                'properties': {'instance_uuid': uuids.instance,
                               'image_type': image_type}}

    def _action(self, name, started):
        return objects.InstanceAction(
            id=len(name), action=name, request_id='req-%s' % name,
            start_time=started, created_at=started, user_id='user')

    def _shelving(self, task_state=task_states.SHELVING_IMAGE_UPLOADING,
                  guest=power_state.SHUTDOWN, **kwargs):
        self._guest(guest)
        kwargs.setdefault('system_metadata',
                          {'image_base_image_ref': uuids.original})
        return self._instance(task_state, display_name='web', **kwargs)

    def _assert_shelved(self, instance, mock_save, task_state,
                        end_task_state=None, power=power_state.SHUTDOWN):
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_states.SHELVED, instance.vm_state)
        self.assertEqual(end_task_state, instance.task_state)
        self.assertEqual(power, instance.power_state)
        sysmeta = instance.system_metadata
        self.assertEqual(uuids.uploaded, sysmeta['shelved_image_id'])
        self.assertEqual(self.compute.host, sysmeta['shelved_host'])
        self.assertIn('shelved_at', sysmeta)
        self.assertEqual(uuids.original, sysmeta['image_base_image_ref'])
        # The image is what the server is unshelved from: never deleted.
        self.image_api.delete.assert_not_called()
        self.mock_fault.assert_not_called()

    def _assert_rolled_back(self, instance, mock_save, task_state):
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_states.STOPPED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertNotIn('shelved_image_id', instance.system_metadata)
        self.mock_offload.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_uploaded_image_finishes_the_shelve(self):
        instance = self._shelving()
        mock_save = self._recover(instance)
        self._assert_shelved(instance, mock_save,
                             task_states.SHELVING_IMAGE_UPLOADING)
        self.mock_power_off.assert_not_called()
        self.mock_offload.assert_not_called()
        # CONTINUE: nova's own path for a SHELVED server on this host.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_uploaded_image_is_read_as_the_service_user(self):
        self.useFixture(test.fixtures.MockPatchObject(
            releases, 'service_auth_plugin',
            return_value=mock.sentinel.service_user))
        instance = self._shelving()
        mock_save = self._recover(instance)
        self._assert_shelved(instance, mock_save,
                             task_states.SHELVING_IMAGE_UPLOADING)
        acting = self.image_api.get_all.call_args_list[0][0][0]
        self.assertIs(mock.sentinel.service_user, acting.get_auth_plugin())
        self.image_api.get_all.assert_called_with(
            mock.ANY, filters={'instance_uuid': uuids.instance})

    def test_uploaded_image_offloaded_at_once(self):
        """shelved_offload_time 0 (nova's default) offloads it now.

        The shelve is recorded under SHELVING_OFFLOADING first, as
        _shelve_instance records it, and _shelve_offload_instance takes
        it from there.
        """
        self.flags(shelved_offload_time=0)
        instance = self._shelving()
        mock_save = self._recover(instance)
        self._assert_shelved(instance, mock_save,
                             task_states.SHELVING_IMAGE_UPLOADING,
                             end_task_state=task_states.SHELVING_OFFLOADING)
        self.mock_offload.assert_called_once_with(
            self.context, instance, clean_shutdown=True, accel_uuids=[])
        self.mock_plug.assert_not_called()

    def test_running_guest_is_shut_down_cleanly(self):
        instance = self._shelving(guest=power_state.RUNNING)
        self.mock_power_off.side_effect = lambda *a, **k: self._guest(
            power_state.SHUTDOWN)
        mock_save = self._recover(instance)
        self.mock_power_off.assert_called_once_with(
            self.context, instance, clean_shutdown=True)
        self._assert_shelved(instance, mock_save,
                             task_states.SHELVING_IMAGE_UPLOADING)

    def test_paused_guest_is_powered_off_at_once(self):
        # As _shelve_instance does: a paused guest may fail a clean one.
        instance = self._shelving(guest=power_state.PAUSED,
                                  vm_state=vm_states.PAUSED)
        self.mock_power_off.side_effect = lambda *a, **k: self._guest(
            power_state.SHUTDOWN)
        mock_save = self._recover(instance)
        self.mock_power_off.assert_called_once_with(
            self.context, instance, clean_shutdown=False)
        self._assert_shelved(instance, mock_save,
                             task_states.SHELVING_IMAGE_UPLOADING)

    def test_pending_upload_and_shelving_with_active_image(self):
        for task_state in (task_states.SHELVING_IMAGE_PENDING_UPLOAD,
                           task_states.SHELVING):
            self.image_api.reset_mock()
            instance = self._shelving(task_state=task_state)
            mock_save = self._recover(instance)
            self._assert_shelved(instance, mock_save, task_state)

    def test_other_unfinished_images_are_deleted(self):
        self.image_api.get_all.return_value = [
            self.shelved, self._image(uuids.half_image, '2026-03-01T12:00:01Z',
                                      name='mine', status='queued')]
        instance = self._shelving()
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SHELVING_IMAGE_UPLOADING)
        self.assertEqual(uuids.uploaded,
                         instance.system_metadata['shelved_image_id'])
        self.image_api.delete.assert_called_once_with(
            self.context, uuids.half_image)

    def _assert_not_adopted(self, *images):
        self.image_api.get_all.return_value = list(images)
        instance = self._shelving()
        mock_save = self._recover(instance)
        self._assert_rolled_back(instance, mock_save,
                                 task_states.SHELVING_IMAGE_UPLOADING)
        self.image_api.delete.assert_not_called()

    def test_older_user_snapshot_is_never_adopted(self):
        # Named and made like it, but before this shelve was asked for.
        self._assert_not_adopted(
            self._image(uuids.older, '2026-03-01T11:59:59Z'))

    def test_image_of_another_project_is_never_adopted(self):
        self._assert_not_adopted(
            self._image(uuids.other, '2026-03-01T12:00:01Z',
                        owner=uuids.other_project))

    def test_other_names_and_types_are_never_adopted(self):
        self._assert_not_adopted(
            self._image(uuids.snap, '2026-03-01T12:00:01Z', name='web-snap'),
            self._image(uuids.backup, '2026-03-01T12:00:01Z',
                        image_type='backup'))

    def test_two_candidates_adopt_neither(self):
        self._assert_not_adopted(
            self.shelved, self._image(uuids.second, '2026-03-01T12:00:02Z'))

    def test_unreadable_actions_adopt_nothing(self):
        self.mock_actions.side_effect = test.TestingException('conductor')
        self._assert_not_adopted(self.shelved)

    def test_no_shelve_action_adopts_nothing(self):
        self.mock_actions.return_value = [self._action('lock', self.STARTED)]
        self._assert_not_adopted(self.shelved)

    def test_unreadable_glance_rolls_back(self):
        self.image_api.get_all.side_effect = test.TestingException('glance')
        instance = self._shelving()
        mock_save = self._recover(instance)
        self._assert_rolled_back(instance, mock_save,
                                 task_states.SHELVING_IMAGE_UPLOADING)

    def test_guest_gone_is_not_finished(self):
        # The offload would power the missing guest off first; as before,
        # ERROR, and the whole image is left alone.
        instance = self._shelving(guest=power_state.NOSTATE)
        self._recover(instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertNotIn('shelved_image_id', instance.system_metadata)
        self.image_api.delete.assert_not_called()
        self.mock_offload.assert_not_called()

    def test_lost_race_raises_nothing(self):
        self.flags(shelved_offload_time=0)
        instance = self._shelving()
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid,
                    expected='shelving_image_uploading',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SHELVING_IMAGE_UPLOADING)
        self.mock_offload.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()
