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
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import test
from nova.virt import hardware

from nova_recover.tests.unit import base

# api.soft_delete records 'delete'; restore records 'restore'.
RERUN_ACTIONS = {
    'soft_delete_instance': instance_actions.DELETE,
    'restore_instance': instance_actions.RESTORE,
}


class SoftDeleteRecoveryTestCase(base.InitInstanceTestCase):
    """The rule hands the operation to the manager's own method, which
    does the work and its own compare-and-swap; the functional tests run
    those methods for real.
    """

    def setUp(self):
        super().setUp()
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(state=power_state.RUNNING)))

    def _init(self, instance, method, side_effect, save_error=None):
        with test.nested(
            mock.patch.object(self.compute, method, side_effect=side_effect),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (mock_method, mock_save):
            self.compute._init_instance(self.context, instance)
        self.assertRerun(mock_method, instance, RERUN_ACTIONS[method])
        return mock_save

    def test_soft_deleting_is_soft_deleted(self):
        def soft_delete(context, instance):
            instance.vm_state = vm_states.SOFT_DELETED
            instance.task_state = None

        instance = self._instance(task_states.SOFT_DELETING)
        mock_save = self._init(instance, 'soft_delete_instance', soft_delete)
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()
        # Nova's start-up path has nothing to do for SOFT_DELETED.
        self.mock_plug.assert_not_called()

    def test_restoring_is_restored(self):
        def restore(context, instance):
            instance.vm_state = vm_states.ACTIVE
            instance.task_state = None

        instance = self._instance(task_states.RESTORING,
                                  vm_state=vm_states.SOFT_DELETED,
                                  power=power_state.SHUTDOWN)
        mock_save = self._init(instance, 'restore_instance', restore)
        self.mock_fault.assert_not_called()
        # Restored and ACTIVE: nova's own path plugs the VIFs.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        mock_save.assert_not_called()

    def _assert_errored(self, task_state, vm_state, method, operation):
        instance = self._instance(task_state, vm_state=vm_state)
        mock_save = self._init(
            instance, method, exception.HypervisorUnavailable(host='fake'))
        mock_save.assert_called_once_with(expected_task_state=[task_state])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance,
                         '%s interrupted by nova-compute restart' % operation)
        self.mock_plug.assert_not_called()

    def test_soft_delete_failure_errors_out(self):
        self._assert_errored(task_states.SOFT_DELETING, vm_states.ACTIVE,
                             'soft_delete_instance', 'soft delete')

    def test_restore_failure_errors_out(self):
        self._assert_errored(task_states.RESTORING, vm_states.SOFT_DELETED,
                             'restore_instance', 'restore')

    def test_lost_race_leaves_instance_and_records_no_fault(self):
        instance = self._instance(task_states.SOFT_DELETING)
        mock_save = self._init(
            instance, 'soft_delete_instance',
            exception.UnexpectedTaskStateError(
                instance_uuid=instance.uuid, expected='soft-deleting',
                actual='deleting'))
        mock_save.assert_not_called()
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.mock_fault.assert_not_called()
        self.mock_plug.assert_not_called()

    def test_restore_lost_race_to_delete(self):
        """The row is gone: the ERROR save finds it gone too, no fault."""
        instance = self._instance(task_states.RESTORING,
                                  vm_state=vm_states.SOFT_DELETED)
        gone = exception.InstanceNotFound(instance_id=instance.uuid)
        mock_save = self._init(instance, 'restore_instance', gone,
                               save_error=gone)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.RESTORING])
        self.mock_fault.assert_not_called()
        self.mock_plug.assert_not_called()
