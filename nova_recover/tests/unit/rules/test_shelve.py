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
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.tests.unit import fake_block_device
from nova.virt import hardware

from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery.rules import shelve
from nova_recover.tests.unit import base

SHELVED_KEYS = {'shelved_at': '2026-01-01T00:00:00',
                'shelved_image_id': uuids.shelved_image,
                'shelved_host': 'fake-mini'}


class _ShelveTestCase(base.InitInstanceTestCase):
    """What the shelve rule's tests share; it holds no test."""

    def setUp(self):
        super().setUp()
        # The engine's evidence reads the database; these requests reached
        # the host.
        self.mock_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info')).mock
        self.image_api = mock.Mock()
        self.image_api.get_all.return_value = [
            {'id': uuids.half_image, 'status': 'saving',
             'owner': self.context.project_id,
             'properties': {'instance_uuid': uuids.instance,
                            'image_type': 'snapshot'}}]
        self.compute.image_api = self.image_api
        self.mock_volume_backed = self.useFixture(
            test.fixtures.MockPatchObject(
                compute_utils, 'is_volume_backed_instance',
                return_value=False)).mock
        self.mock_offload = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, '_shelve_offload_instance')).mock

    def _guest(self, state):
        if state == power_state.NOSTATE:
            self.mock_info.side_effect = exception.InstanceNotFound(
                instance_id=uuids.instance)
        else:
            self.mock_info.return_value = hardware.InstanceInfo(state=state)

    def _instance(self, *args, **kwargs):
        kwargs.setdefault('system_metadata', {})
        kwargs.setdefault('expected_attrs', ['system_metadata'])
        instance = super()._instance(*args, **kwargs)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        instance.obj_reset_changes()
        return instance

    def _recover(self, instance):
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        return mock_save


class ShelveRecoveryTestCase(_ShelveTestCase):

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

    def test_offloading_with_shelved_image_finishes_offload(self):
        self._guest(power_state.SHUTDOWN)
        self.image_api.get.return_value = {'id': uuids.shelved_image,
                                           'status': 'active'}
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED,
                                  system_metadata=dict(SHELVED_KEYS))
        self._recover(instance)
        self.image_api.get.assert_called_once_with(
            self.context, uuids.shelved_image)
        self.mock_offload.assert_called_once_with(
            self.context, instance, clean_shutdown=True, accel_uuids=[])
        # The shelved image is what unshelve needs: never deleted.
        self.image_api.delete.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_offloading_reads_shelved_image_as_the_service_user(self):
        """Start-up's context has no token; glance is asked as nova.

        The shelved image was read with that context itself, which real
        glance refuses (keystoneauth raises AuthorizationFailure), so no
        interrupted offload was ever finished: each went to ERROR.
        """
        self.useFixture(test.fixtures.MockPatch(
            'nova.service_auth.get_service_auth_plugin',
            return_value=mock.sentinel.service_user))
        self._guest(power_state.SHUTDOWN)
        self.assertIsNone(self.context.auth_token)

        def get(context, image_id):
            if context.get_auth_plugin() is not mock.sentinel.service_user:
                raise exception.Forbidden('no token')
            return {'id': image_id, 'status': 'active'}

        self.image_api.get.side_effect = get
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED,
                                  system_metadata=dict(SHELVED_KEYS))
        self._recover(instance)
        self.image_api.get.assert_called_once_with(mock.ANY,
                                                   uuids.shelved_image)
        acting = self.image_api.get.call_args[0][0]
        self.assertIs(mock.sentinel.service_user, acting.get_auth_plugin())
        self.assertEqual(self.context.project_id, acting.project_id)
        self.mock_offload.assert_called_once_with(
            self.context, instance, clean_shutdown=True, accel_uuids=[])
        self.image_api.delete.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_offload_rerun_shuts_the_guest_down_cleanly(self):
        """The offload is re-run as the user asked for it.

        It was re-run with clean_shutdown=False, a power cut for a guest
        still running, while the API sends shelve and shelveOffload with
        clean_shutdown=True.
        """
        self._guest(power_state.RUNNING)
        self.mock_volume_backed.return_value = True
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED)
        mock_save = self._recover(instance)
        self.mock_offload.assert_called_once_with(
            self.context, instance, clean_shutdown=True, accel_uuids=[])
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_offloading_without_shelved_image_keeps_guest(self):
        self._guest(power_state.SHUTDOWN)
        self.image_api.get.side_effect = exception.ImageNotFound(
            image_id=uuids.shelved_image)
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED,
                                  system_metadata=dict(SHELVED_KEYS))
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SHELVING_OFFLOADING)
        self.assertEqual(vm_states.SHELVED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.mock_offload.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_offloading_image_not_active_keeps_guest(self):
        self._guest(power_state.SHUTDOWN)
        self.image_api.get.return_value = {'id': uuids.shelved_image,
                                           'status': 'saving'}
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED,
                                  system_metadata=dict(SHELVED_KEYS))
        self._recover(instance)
        self.assertEqual(vm_states.SHELVED, instance.vm_state)
        self.mock_offload.assert_not_called()

    def test_offloading_without_image_or_guest_errors(self):
        self._guest(power_state.NOSTATE)
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED)
        self._recover(instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'shelve offload interrupted by '
                                   'nova-compute restart')
        self.mock_offload.assert_not_called()

    def test_offload_lost_race_raises_nothing(self):
        self._guest(power_state.SHUTDOWN)
        self.mock_volume_backed.return_value = True
        self.mock_offload.side_effect = exception.UnexpectedTaskStateError(
            instance_uuid=uuids.instance, expected='shelving_offloading',
            actual='deleting')
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED)
        mock_save = self._recover(instance)
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_offload_failure_errors_with_fault(self):
        self._guest(power_state.SHUTDOWN)
        self.mock_volume_backed.return_value = True
        self.mock_offload.side_effect = test.TestingException('neutron')
        instance = self._instance(task_states.SHELVING_OFFLOADING,
                                  vm_state=vm_states.SHELVED)
        self._recover(instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'shelve offload interrupted by '
                                   'nova-compute restart: neutron')

    def test_unshelving_shelved_guest_off(self):
        self._guest(power_state.SHUTDOWN)
        instance = self._instance(task_states.UNSHELVING,
                                  vm_state=vm_states.SHELVED,
                                  system_metadata=dict(SHELVED_KEYS))
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.UNSHELVING)
        self.assertEqual(vm_states.SHELVED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(uuids.shelved_image,
                         instance.system_metadata['shelved_image_id'])
        self.image_api.delete.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_unshelving_guest_runs_here(self):
        self._guest(power_state.RUNNING)
        instance = self._instance(task_states.UNSHELVING,
                                  vm_state=vm_states.SHELVED,
                                  system_metadata=dict(SHELVED_KEYS))
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.UNSHELVING)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.assertNotIn('shelved_image_id', instance.system_metadata)
        # The shelved image is left in glance, not lost with the keys.
        self.image_api.delete.assert_not_called()
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_unshelving_offloaded(self):
        self._guest(power_state.NOSTATE)
        instance = self._instance(task_states.UNSHELVING,
                                  vm_state=vm_states.SHELVED_OFFLOADED,
                                  system_metadata=dict(SHELVED_KEYS))
        self._recover(instance)
        self.assertEqual(vm_states.SHELVED_OFFLOADED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        # No guest here for nova's start-up path.
        self.mock_plug.assert_not_called()

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


class ShelveUploadedTestCase(_ShelveTestCase):
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
        self.useFixture(test.fixtures.MockPatch(
            'nova.service_auth.get_service_auth_plugin',
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


class UnshelveSpawningTestCase(_ShelveTestCase):
    """_unshelve_instance died while it spawned the offloaded server."""

    def setUp(self):
        super().setUp()
        self.bdm = fake_block_device.fake_bdm_object(self.context, {
            'id': 1, 'instance_uuid': uuids.instance,
            'source_type': 'volume', 'destination_type': 'volume',
            'volume_id': uuids.volume, 'attachment_id': uuids.old_attachment,
            'device_name': '/dev/vdb', 'boot_index': None,
            'connection_info': '{"driver_volume_type": "fake"}'})
        self.mock_bdms = self.useFixture(test.fixtures.MockPatchObject(
            objects.BlockDeviceMappingList, 'get_by_instance_uuid',
            return_value=objects.BlockDeviceMappingList(
                objects=[self.bdm]))).mock
        self.mock_bdm_save = self.useFixture(test.fixtures.MockPatchObject(
            self.bdm, 'save')).mock
        self.volume_api = mock.Mock()
        self.volume_api.attachment_create.return_value = {
            'id': uuids.new_attachment}
        self.compute.volume_api = self.volume_api
        self.mock_reportclient = self.useFixture(
            test.fixtures.MockPatchObject(
                self.compute, 'reportclient')).mock
        self.mock_destroy = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'destroy')).mock

    def _spawning(self):
        # The claim saved the shelved snapshot as image_ref; the API
        # recorded the original when it shelved the server.
        sysmeta = dict(SHELVED_KEYS, image_base_image_ref=uuids.original)
        return self._instance(task_states.SPAWNING,
                              vm_state=vm_states.SHELVED_OFFLOADED,
                              power=power_state.NOSTATE,
                              image_ref=uuids.shelved_image,
                              launched_at=None, node='fake-node',
                              system_metadata=sysmeta)

    def test_unshelve_spawning_is_the_shelve_rules(self):
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.SHELVED_OFFLOADED)
        self.assertIs(shelve, engine.rule_for(instance))

    def test_guest_runs_here_is_active(self):
        """A running guest is the unshelved server: ACTIVE, snapshot gone.

        The build rule claimed every SPAWNING and put this instance in
        ERROR with "build interrupted", though the server ran here.
        """
        self._guest(power_state.RUNNING)
        instance = self._spawning()
        calls = mock.Mock()
        calls.attach_mock(self.image_api.delete, 'delete')
        with mock.patch.object(instance, 'save') as mock_save:
            calls.attach_mock(mock_save, 'save')
            self.compute._init_instance(self.context, instance)
        self.assertEqual(
            [mock.call.save(expected_task_state=task_states.SPAWNING),
             mock.call.delete(self.context, uuids.shelved_image)],
            calls.mock_calls)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.assertEqual(self.compute.host, instance.host)
        self.assertEqual('fake-node', instance.node)
        self.assertEqual(uuids.original, instance.image_ref)
        self.assertIsNotNone(instance.launched_at)
        for key in SHELVED_KEYS:
            self.assertNotIn(key, instance.system_metadata)
        # The guest and what it uses stay.
        self.mock_destroy.assert_not_called()
        self.mock_reportclient.delete_allocation_for_instance.\
            assert_not_called()
        self.volume_api.attachment_delete.assert_not_called()
        # CONTINUE: nova's own start-up path plugs the VIFs.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        self.mock_fault.assert_not_called()

    def test_guest_runs_original_image_unknown_keeps_snapshot(self):
        """image_ref still names the snapshot: it must not be deleted."""
        self._guest(power_state.RUNNING)
        instance = self._spawning()
        del instance.system_metadata['image_base_image_ref']
        self._recover(instance)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual(uuids.shelved_image, instance.image_ref)
        self.image_api.delete.assert_not_called()

    def _assert_back_offloaded(self, instance, mock_save):
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SPAWNING)
        self.assertEqual(vm_states.SHELVED_OFFLOADED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(power_state.NOSTATE, instance.power_state)
        self.assertIsNone(instance.host)
        self.assertIsNone(instance.node)
        self.assertEqual(uuids.original, instance.image_ref)
        # Still shelved: the keys and the image to unshelve from stay.
        for key, value in SHELVED_KEYS.items():
            self.assertEqual(value, instance.system_metadata[key])
        self.image_api.delete.assert_not_called()
        self.mock_reportclient.delete_allocation_for_instance.\
            assert_called_once_with(self.context, uuids.instance, force=True)
        # The volume is let go of this host, as nova does.
        self.volume_api.attachment_create.assert_called_once_with(
            self.context, uuids.volume, uuids.instance)
        self.volume_api.attachment_delete.assert_called_once_with(
            self.context, uuids.old_attachment)
        self.assertEqual(uuids.new_attachment, self.bdm.attachment_id)
        self.volume_api.delete.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_no_guest_goes_back_to_offloaded(self):
        """Nothing spawned: shelved offloaded again, ready to unshelve.

        The build rule put it in ERROR with "build interrupted", and left
        this host's allocations and volume connections behind.
        """
        self._guest(power_state.NOSTATE)
        instance = self._spawning()
        mock_save = self._recover(instance)
        self._assert_back_offloaded(instance, mock_save)
        self.mock_destroy.assert_not_called()

    def test_half_spawned_guest_is_destroyed(self):
        """A guest that exists but does not run is removed, volumes kept."""
        self._guest(power_state.SHUTDOWN)
        instance = self._spawning()
        mock_save = self._recover(instance)
        self._assert_back_offloaded(instance, mock_save)
        self.mock_destroy.assert_called_once_with(
            self.context, instance, instance.get_network_info(), mock.ANY)
        block_device_info = self.mock_destroy.call_args[0][3]
        # Passed so the driver disconnects the volume it attached.
        self.assertEqual(
            [{'driver_volume_type': 'fake'}],
            [bdm['connection_info']
             for bdm in block_device_info['block_device_mapping']])

    def test_placement_failure_still_offloads(self):
        self._guest(power_state.NOSTATE)
        self.mock_reportclient.delete_allocation_for_instance.side_effect = (
            test.TestingException('placement down'))
        instance = self._spawning()
        mock_save = self._recover(instance)
        self._assert_back_offloaded(instance, mock_save)

    def test_cinder_failure_still_offloads(self):
        self._guest(power_state.NOSTATE)
        self.volume_api.attachment_create.side_effect = (
            test.TestingException('cinder down'))
        instance = self._spawning()
        mock_save = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SPAWNING)
        self.assertEqual(vm_states.SHELVED_OFFLOADED, instance.vm_state)
        self.assertIsNone(instance.host)
        self.mock_fault.assert_not_called()

    def test_lost_race_raises_nothing(self):
        self._guest(power_state.NOSTATE)
        instance = self._spawning()
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='spawning',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SPAWNING)
        self.mock_fault.assert_not_called()

    def test_failure_fault_names_the_unshelve(self):
        """A recovery that fails says an unshelve was interrupted.

        The fault named SPAWNING's operation as a build.
        """
        self._guest(power_state.NOSTATE)
        self.mock_bdms.side_effect = test.TestingException('conductor')
        instance = self._spawning()
        self._recover(instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'unshelve interrupted by nova-compute '
                                   'restart: conductor')

    def test_build_spawning_is_still_the_build_rules(self):
        self._guest(power_state.NOSTATE)
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.BUILDING)
        self._recover(instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'build interrupted')
