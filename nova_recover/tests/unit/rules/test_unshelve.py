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
from nova import objects
from nova import test
from nova.tests.unit import fake_block_device

from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery.rules import unshelve
from nova_recover.tests.unit.rules import shelve_base

SHELVED_KEYS = shelve_base.SHELVED_KEYS


class UnshelvingRecoveryTestCase(shelve_base.ShelveTestCase):
    """UNSHELVING: back to shelved, or ACTIVE where the guest runs."""

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


class UnshelveSpawningTestCase(shelve_base.ShelveTestCase):
    """_unshelve_instance died while it spawned the offloaded server."""

    def setUp(self):
        super().setUp()
        self.bdm = fake_block_device.fake_bdm_object(self.context, {
            'id': 1, 'instance_uuid': uuids.instance,
            'source_type': 'volume', 'destination_type': 'volume',
            'volume_id': uuids.volume, 'attachment_id': uuids.old_attachment,
            'device_name': '/dev/vdb', 'boot_index': None,
            'connection_info': '{"driver_volume_type": "fake"}'})
        # nova 31's fake_bdm_object drops the attachment_id it is given.
        self.bdm.attachment_id = uuids.old_attachment
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

    def test_unshelve_spawning_is_the_unshelve_rules(self):
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.SHELVED_OFFLOADED)
        self.assertIs(unshelve, engine.rule_for(instance))

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
