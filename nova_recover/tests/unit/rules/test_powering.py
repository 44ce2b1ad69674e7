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

import ddt
from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import test
from nova.virt import hardware

from nova_recover.tests.unit import base


@ddt.ddt
class PoweringRecoveryTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        self.mock_get_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info')).mock

    def _init(self, task_state, vm_state, power, error=None,
              save_error=None):
        if power == power_state.NOSTATE:
            # No guest on the hypervisor.
            self.mock_get_info.side_effect = exception.InstanceNotFound(
                instance_id='fake')
        else:
            self.mock_get_info.return_value = hardware.InstanceInfo(
                state=power)
        instance = self._instance(task_state, vm_state=vm_state,
                                  power=power_state.RUNNING)
        with test.nested(
            mock.patch.object(self.compute, 'stop_instance',
                              side_effect=error),
            mock.patch.object(self.compute, 'start_instance',
                              side_effect=error),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (mock_stop, mock_start, mock_save):
            self.compute._init_instance(self.context, instance)
        return instance, mock_stop, mock_start, mock_save

    # POWERING_OFF

    @ddt.data(vm_states.ACTIVE, vm_states.RESCUED, vm_states.PAUSED,
              vm_states.SUSPENDED, vm_states.ERROR)
    def test_powering_off_running_retries_clean_stop(self, vm_state):
        """The stop is retried as the API asked for it: a clean shutdown.

        The rule used to retry it with clean_shutdown=False, a power cut,
        although POWERING_OFF only proves that stop_instance started, not
        that the guest ever got its shutdown request. ERROR+POWERING_OFF:
        stock nova 34 returns early for ERROR and leaves it stuck.
        """
        instance, mock_stop, mock_start, mock_save = self._init(
            task_states.POWERING_OFF, vm_state, power_state.RUNNING)
        self.assertRerun(mock_stop, instance, instance_actions.STOP,
                         clean_shutdown=True)
        mock_start.assert_not_called()
        mock_save.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    @ddt.idata((vm, p)
               for vm in (vm_states.ACTIVE, vm_states.RESCUED,
                          vm_states.ERROR)
               for p in (power_state.SHUTDOWN, power_state.CRASHED,
                         power_state.NOSTATE))
    @ddt.unpack
    def test_powering_off_guest_off_settles_stopped(self, vm_state, power):
        """Already off (or no guest at all): record STOPPED, stop nothing."""
        instance, mock_stop, mock_start, mock_save = self._init(
            task_states.POWERING_OFF, vm_state, power)
        mock_stop.assert_not_called()
        mock_save.assert_called_once_with(
            expected_task_state=task_states.POWERING_OFF)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.STOPPED, instance.vm_state)
        self.assertEqual(power, instance.power_state)
        self.mock_fault.assert_not_called()

    def test_stop_failure_sets_error(self):
        instance, mock_stop, _start, mock_save = self._init(
            task_states.POWERING_OFF, vm_states.ACTIVE, power_state.RUNNING,
            error=test.TestingException('stuck guest'))
        mock_stop.assert_called_once()
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.POWERING_OFF])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance, 'stop interrupted by nova-compute '
                                   'restart: stuck guest')

    # POWERING_ON

    @ddt.data(power_state.SHUTDOWN, power_state.CRASHED, power_state.PAUSED)
    def test_powering_on_guest_off_retries_start(self, power):
        instance, mock_stop, mock_start, mock_save = self._init(
            task_states.POWERING_ON, vm_states.STOPPED, power)
        self.assertRerun(mock_start, instance, instance_actions.START)
        mock_stop.assert_not_called()
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_powering_on_guest_running_settles_active(self):
        instance, mock_stop, mock_start, mock_save = self._init(
            task_states.POWERING_ON, vm_states.STOPPED, power_state.RUNNING)
        mock_start.assert_not_called()
        mock_save.assert_called_once_with(
            expected_task_state=task_states.POWERING_ON)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.mock_fault.assert_not_called()

    def _unshelve_started(self, save_error=None):
        """The unshelve of a SHELVED server died in its start."""
        self.mock_get_info.return_value = hardware.InstanceInfo(
            state=power_state.RUNNING)
        instance = self._instance(
            task_states.POWERING_ON, vm_state=vm_states.SHELVED,
            system_metadata={'shelved_image_id': uuids.snapshot,
                             'shelved_at': 'then', 'shelved_host': 'here'},
            expected_attrs=['system_metadata'])
        with test.nested(
            mock.patch.object(self.compute, 'start_instance'),
            mock.patch.object(self.compute,
                              '_delete_snapshot_of_shelved_instance'),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (mock_start, mock_delete, mock_save):
            self.compute._init_instance(self.context, instance)
        mock_start.assert_not_called()
        mock_save.assert_called_once_with(
            expected_task_state=task_states.POWERING_ON)
        return instance, mock_delete

    def test_unshelve_start_guest_running_drops_the_shelved_snapshot(self):
        """As start_instance does once the guest runs: before, the snapshot

        stayed in glance, and its owner paid for an image nothing uses.
        """
        instance, mock_delete = self._unshelve_started()
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertNotIn('shelved_image_id', instance.system_metadata)
        self.assertNotIn('shelved_host', instance.system_metadata)
        mock_delete.assert_called_once_with(mock.ANY, instance,
                                            uuids.snapshot)
        self.mock_fault.assert_not_called()

    def test_unshelve_start_lost_race_keeps_the_snapshot(self):
        _instance, mock_delete = self._unshelve_started(
            save_error=exception.UnexpectedTaskStateError(
                instance_uuid='fake', expected='powering-on',
                actual='shelving'))
        mock_delete.assert_not_called()

    def test_start_failure_sets_error(self):
        """Stock nova 34 logs a failed start retry and leaves the instance

        in POWERING_ON.
        """
        instance, _stop, mock_start, mock_save = self._init(
            task_states.POWERING_ON, vm_states.STOPPED, power_state.SHUTDOWN,
            error=test.TestingException('no disk'))
        mock_start.assert_called_once()
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.POWERING_ON])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance, 'start interrupted by nova-compute '
                                   'restart: no disk')

    def test_start_failure_without_guest_sets_error(self):
        instance, _stop, mock_start, _save = self._init(
            task_states.POWERING_ON, vm_states.STOPPED, power_state.NOSTATE,
            error=exception.InstanceNotFound(instance_id='fake'))
        mock_start.assert_called_once()
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'start interrupted by nova-compute '
                                   'restart')

    # Lost races

    @ddt.data((task_states.POWERING_OFF, power_state.SHUTDOWN),
              (task_states.POWERING_ON, power_state.RUNNING))
    @ddt.unpack
    def test_lost_race_on_settle_leaves_instance(self, task_state, power):
        instance, mock_stop, mock_start, mock_save = self._init(
            task_state, vm_states.ACTIVE, power,
            save_error=exception.UnexpectedTaskStateError(
                instance_uuid='fake', expected=task_state,
                actual='deleting'))
        mock_save.assert_called_once_with(expected_task_state=task_state)
        mock_stop.assert_not_called()
        mock_start.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_start_failure_then_lost_race_records_no_fault(self):
        instance, _stop, _start, mock_save = self._init(
            task_states.POWERING_ON, vm_states.STOPPED, power_state.SHUTDOWN,
            error=test.TestingException('boom'),
            save_error=exception.UnexpectedTaskStateError(
                instance_uuid='fake', expected='powering-on',
                actual='deleting'))
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.POWERING_ON])
        self.mock_fault.assert_not_called()
