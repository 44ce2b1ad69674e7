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

from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import objects
from nova import test

from nova_recover.tests.unit import base


class DeletingRecoveryTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        self.bdms = objects.BlockDeviceMappingList(objects=[])
        self.mock_get_bdms = self.useFixture(test.fixtures.MockPatchObject(
            objects.BlockDeviceMappingList, 'get_by_instance_uuid',
            return_value=self.bdms)).mock

    def _init(self, instance, delete_error=None, save_error=None):
        with test.nested(
            mock.patch.object(instance, 'obj_load_attr'),
            mock.patch.object(self.compute, '_delete_instance',
                              side_effect=delete_error),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (mock_load, mock_delete, mock_save):
            self.compute._init_instance(self.context, instance)
        return mock_load, mock_delete, mock_save

    def _assert_deleted(self, vm_state):
        instance = self._instance(task_states.DELETING, vm_state=vm_state)
        mock_load, mock_delete, mock_save = self._init(instance)
        mock_load.assert_has_calls([mock.call('metadata'),
                                    mock.call('system_metadata')])
        self.mock_get_bdms.assert_called_once_with(self.context,
                                                   instance.uuid)
        mock_delete.assert_called_once_with(self.context, instance,
                                            self.bdms)
        # The delete is the end of the story: nova's own path does not run
        # and this rule saves nothing itself (_delete_instance does).
        mock_save.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_deleting_active(self):
        self._assert_deleted(vm_states.ACTIVE)

    def test_deleting_stopped(self):
        self._assert_deleted(vm_states.STOPPED)

    def test_deleting_paused(self):
        self._assert_deleted(vm_states.PAUSED)

    def test_deleting_error(self):
        """Stock nova 34 deletes ERROR+DELETING as well; kept as is."""
        self._assert_deleted(vm_states.ERROR)

    def test_deleting_soft_deleted(self):
        """Stock nova 34 returns early for every SOFT_DELETED instance,

        so a delete of a soft-deleted instance that died with nova-compute
        stays in DELETING for ever. The rule finishes it.
        """
        self._assert_deleted(vm_states.SOFT_DELETED)

    def test_deleting_building(self):
        """A delete asked for during the build wins over the build rule."""
        self._assert_deleted(vm_states.BUILDING)

    def test_deleting_building_delete_fails_sets_error(self):
        instance = self._instance(task_states.DELETING,
                                  vm_state=vm_states.BUILDING)
        _load, _delete, mock_save = self._init(
            instance, delete_error=test.TestingException('boom'))
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.DELETING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance,
                         'delete interrupted by nova-compute restart: boom')

    def test_deleted_completes_partial_deletion(self):
        instance = self._instance(None, vm_state=vm_states.DELETED)
        with test.nested(
            mock.patch.object(self.compute, '_complete_partial_deletion'),
            mock.patch.object(self.compute, '_delete_instance'),
            mock.patch.object(instance, 'save'),
        ) as (mock_complete, mock_delete, mock_save):
            self.compute._init_instance(self.context, instance)
        mock_complete.assert_called_once_with(self.context, instance)
        mock_delete.assert_not_called()
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_deleted_partial_deletion_fails_sets_error(self):
        """Stock nova 34 logs the failure and leaves the row as it was."""
        instance = self._instance(None, vm_state=vm_states.DELETED)
        with test.nested(
            mock.patch.object(self.compute, '_complete_partial_deletion',
                              side_effect=test.TestingException('boom')),
            mock.patch.object(instance, 'save'),
        ) as (mock_complete, mock_save):
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(expected_task_state=[None])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'delete interrupted by nova-compute '
                                   'restart: boom')

    def _assert_delete_failure_errors(self, vm_state):
        instance = self._instance(task_states.DELETING, vm_state=vm_state)
        _load, mock_delete, mock_save = self._init(
            instance, delete_error=test.TestingException('boom'))
        mock_delete.assert_called_once_with(self.context, instance,
                                            self.bdms)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.DELETING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance,
                         'delete interrupted by nova-compute restart: boom')
        self.mock_plug.assert_not_called()

    def test_delete_fails_sets_error_active(self):
        self._assert_delete_failure_errors(vm_states.ACTIVE)

    def test_delete_fails_sets_error_soft_deleted(self):
        self._assert_delete_failure_errors(vm_states.SOFT_DELETED)

    def test_delete_fails_sets_error_error(self):
        """Stock nova 34 also errors it, but records no fault."""
        self._assert_delete_failure_errors(vm_states.ERROR)

    def test_bdm_lookup_fails_sets_error(self):
        instance = self._instance(task_states.DELETING)
        self.mock_get_bdms.side_effect = test.TestingException('db gone')
        _load, mock_delete, mock_save = self._init(instance)
        mock_delete.assert_not_called()
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.DELETING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'delete interrupted by nova-compute '
                                   'restart: db gone')

    def test_delete_fails_then_lost_race_records_no_fault(self):
        instance = self._instance(task_states.DELETING)
        _load, _delete, mock_save = self._init(
            instance, delete_error=test.TestingException('boom'),
            save_error=exception.UnexpectedTaskStateError(
                instance_uuid=instance.uuid, expected='deleting',
                actual=None))
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.DELETING])
        self.mock_fault.assert_not_called()

    def test_delete_finds_instance_gone_records_no_fault(self):
        """A delete that raced another one to the end is not a failure."""
        instance = self._instance(task_states.DELETING)
        gone = exception.InstanceNotFound(instance_id=instance.uuid)
        _load, _delete, mock_save = self._init(
            instance, delete_error=gone, save_error=gone)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.DELETING])
        self.mock_fault.assert_not_called()
