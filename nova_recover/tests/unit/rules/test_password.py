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

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import test

from nova_recover.tests.unit import base


class PasswordRecoveryTestCase(base.InitInstanceTestCase):

    def _init(self, instance, save_error=None):
        with test.nested(
            mock.patch.object(self.compute, '_get_power_state',
                              return_value=instance.power_state),
            mock.patch.object(self.compute.driver, 'set_admin_password'),
            mock.patch.object(self.compute.driver, 'plug_vifs',
                              new=self.mock_plug),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (_power, mock_password, mock_plug, mock_save):
            self.compute._init_instance(self.context, instance)
        # The password only travelled in the lost RPC call: never retried.
        mock_password.assert_not_called()
        return mock_plug, mock_save

    def _assert_cleared(self, vm_state, power):
        instance = self._instance(task_states.UPDATING_PASSWORD,
                                  vm_state=vm_state, power=power)
        mock_plug, mock_save = self._init(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.UPDATING_PASSWORD)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.mock_fault.assert_not_called()
        mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_updating_password_on_active(self):
        self._assert_cleared(vm_states.ACTIVE, power_state.RUNNING)

    def test_updating_password_on_stopped(self):
        self._assert_cleared(vm_states.STOPPED, power_state.SHUTDOWN)

    def test_lost_race_leaves_instance_and_records_no_fault(self):
        instance = self._instance(task_states.UPDATING_PASSWORD)
        mock_plug, mock_save = self._init(
            instance, save_error=exception.UnexpectedTaskStateError(
                instance_uuid=instance.uuid, expected='updating_password',
                actual='deleting'))
        mock_save.assert_called_once_with(
            expected_task_state=task_states.UPDATING_PASSWORD)
        self.mock_fault.assert_not_called()
        mock_plug.assert_not_called()
