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
from nova import test

from nova_recover.startup_recovery.rules import build
from nova_recover.tests.unit import base


class BuildRecoveryTestCase(base.InitInstanceTestCase):

    def _assert_errored(self, task_state, vm_state=vm_states.BUILDING):
        instance = self._instance(task_state, vm_state=vm_state)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance,
                         'build interrupted by nova-compute restart')

    def test_building_without_task_state(self):
        self._assert_errored(None)

    def test_scheduling(self):
        self._assert_errored(task_states.SCHEDULING)

    def test_block_device_mapping(self):
        self._assert_errored(task_states.BLOCK_DEVICE_MAPPING)

    def test_networking(self):
        self._assert_errored(task_states.NETWORKING)

    def test_spawning(self):
        self._assert_errored(task_states.SPAWNING)

    def test_spawning_on_active_instance(self):
        self._assert_errored(task_states.SPAWNING, vm_state=vm_states.ACTIVE)

    def test_unshelve_spawning_is_not_a_build(self):
        """An offloaded server spawning is an unshelve, not a build.

        build.owns() took every SPAWNING, and the engine asks build
        before shelve, so an unshelve that died while spawning went to
        ERROR with "build interrupted".
        """
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.SHELVED_OFFLOADED)
        self.assertFalse(build.owns(instance))

    def test_lost_race_leaves_instance_and_records_no_fault(self):
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.BUILDING)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='spawning',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SPAWNING)
        self.mock_fault.assert_not_called()

    def test_instance_gone_records_no_fault(self):
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.BUILDING)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.InstanceNotFound(
                    instance_id=instance.uuid)):
            self.compute._init_instance(self.context, instance)
        self.mock_fault.assert_not_called()

    def test_error_save_failing_raises_nothing_and_records_no_fault(self):
        """A database error on the ERROR save is retried once by the engine

        and then left: start-up goes on, and no fault is written beside an
        instance whose state did not change.
        """
        instance = self._instance(task_states.NETWORKING,
                                  vm_state=vm_states.BUILDING)
        with mock.patch.object(
                instance, 'save',
                side_effect=test.TestingException('db down')) as mock_save:
            self.compute._init_instance(self.context, instance)
        first, second = mock_save.call_args_list
        self.assertEqual(
            mock.call(expected_task_state=task_states.NETWORKING), first)
        self.assertEqual({task_states.NETWORKING, None},
                         set(second[1]['expected_task_state']))
        self.mock_fault.assert_not_called()

    def test_fault_write_failing_still_errors(self):
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.BUILDING)
        self.mock_fault.side_effect = test.TestingException('db down')
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SPAWNING)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
