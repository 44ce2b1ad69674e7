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

from nova_recover.startup_recovery.rules import rebuild
from nova_recover.tests.unit import base

SOURCE = 'source-host'


class RebuildRecoveryTestCase(base.InitInstanceTestCase):

    def _assert_errored(self, task_state, vm_state):
        instance = self._instance(task_state, vm_state=vm_state)
        with test.nested(
            mock.patch.object(self.compute.driver, 'plug_vifs',
                              new=self.mock_plug),
            mock.patch.object(instance, 'save'),
        ) as (mock_plug, mock_save):
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        # The fake driver has no such guest: recorded in the same save.
        self.assertEqual(power_state.NOSTATE, instance.power_state)
        self.assertFault(instance,
                         'rebuild interrupted by nova-compute restart')
        mock_plug.assert_not_called()

    def test_rebuilding_on_active(self):
        self._assert_errored(task_states.REBUILDING, vm_states.ACTIVE)

    def test_rebuild_block_device_mapping_on_stopped(self):
        self._assert_errored(task_states.REBUILD_BLOCK_DEVICE_MAPPING,
                             vm_states.STOPPED)

    def test_rebuild_spawning_on_active(self):
        self._assert_errored(task_states.REBUILD_SPAWNING, vm_states.ACTIVE)

    def test_rebuilding_on_error(self):
        # Stock nova skips ERROR instances and the task stays forever.
        self._assert_errored(task_states.REBUILDING, vm_states.ERROR)

    def test_rebuild_spawning_on_error(self):
        self._assert_errored(task_states.REBUILD_SPAWNING, vm_states.ERROR)

    def test_owns_only_the_states_a_rebuild_starts_from(self):
        for vm_state in (vm_states.ACTIVE, vm_states.STOPPED,
                         vm_states.ERROR):
            self.assertTrue(rebuild.owns(self._instance(
                task_states.REBUILD_SPAWNING, vm_state=vm_state)))
        self.assertFalse(rebuild.owns(self._instance(
            task_states.REBUILDING, vm_state=vm_states.PAUSED)))
        self.assertFalse(rebuild.owns(self._instance(
            task_states.SPAWNING, vm_state=vm_states.ACTIVE)))

    def test_lost_race_leaves_instance_and_records_no_fault(self):
        instance = self._instance(task_states.REBUILD_SPAWNING,
                                  vm_state=vm_states.ACTIVE,
                                  power=power_state.RUNNING)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid,
                    expected='rebuild_spawning',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.REBUILD_SPAWNING)
        self.mock_fault.assert_not_called()
