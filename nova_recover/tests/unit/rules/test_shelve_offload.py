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

from nova_recover.startup_recovery import releases
from nova_recover.tests.unit.rules import shelve_base

SHELVED_KEYS = shelve_base.SHELVED_KEYS


class ShelveOffloadRecoveryTestCase(shelve_base.ShelveTestCase):
    """SHELVING_OFFLOADING: finished with the shelved image, else undone."""

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
        self.useFixture(test.fixtures.MockPatchObject(
            releases, 'service_auth_plugin',
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
