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

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.virt import hardware

from nova_recover.startup_recovery.rules import reboot
from nova_recover.tests.unit import base

# Every vm_state from which nova allows a hard reboot.
VM_STATES = (vm_states.ACTIVE, vm_states.STOPPED, vm_states.PAUSED,
             vm_states.SUSPENDED, vm_states.ERROR)
# A guest not running: shut off, gone from the hypervisor, or paused.
GUEST_DOWN = (power_state.SHUTDOWN, power_state.NOSTATE, power_state.PAUSED)


@ddt.ddt
class RebootRecoveryTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        self.mock_get_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info')).mock

    def _init(self, task_state, vm_state, power, reboot_error=None,
              save_error=None):
        self.mock_get_info.return_value = hardware.InstanceInfo(state=power)
        instance = self._instance(task_state, vm_state=vm_state, power=power)
        with test.nested(
            mock.patch.object(self.compute, 'reboot_instance',
                              side_effect=reboot_error),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (mock_reboot, mock_save):
            self.compute._init_instance(self.context, instance)
        return instance, mock_reboot, mock_save

    def _assert_retried(self, task_state, vm_state, power, reboot_type):
        instance, mock_reboot, mock_save = self._init(task_state, vm_state,
                                                      power)
        self.assertRerun(mock_reboot, instance, instance_actions.REBOOT,
                         block_device_info=None, reboot_type=reboot_type)
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()
        return instance, mock_save

    def _assert_became_hard(self, task_state, vm_state, power):
        """A soft reboot retried as hard moves to REBOOT_PENDING_HARD first,

        by compare-and-swap, because reboot_instance expects a hard task
        state for a hard reboot.
        """
        instance, mock_save = self._assert_retried(task_state, vm_state,
                                                   power, 'HARD')
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(task_states.REBOOT_PENDING_HARD, instance.task_state)

    def _assert_settled(self, task_state, vm_state):
        instance, mock_reboot, mock_save = self._init(
            task_state, vm_state, power_state.RUNNING)
        mock_reboot.assert_not_called()
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.mock_fault.assert_not_called()

    # Pending: the reboot is retried.

    def test_pending_soft_active_running_retries_soft(self):
        _instance, mock_save = self._assert_retried(
            task_states.REBOOT_PENDING, vm_states.ACTIVE, power_state.RUNNING,
            'SOFT')
        mock_save.assert_not_called()

    @ddt.data(vm_states.STOPPED, vm_states.PAUSED, vm_states.SUSPENDED,
              vm_states.ERROR)
    def test_pending_soft_running_not_soft_rebootable_becomes_hard(
            self, vm_state):
        """Stock nova 34 retries REBOOT_PENDING only on ACTIVE and leaves

        these stuck; a soft reboot is not allowed from them, so it is hard.
        """
        self._assert_became_hard(task_states.REBOOT_PENDING, vm_state,
                                 power_state.RUNNING)

    @ddt.idata((vm, p) for vm in VM_STATES for p in GUEST_DOWN)
    @ddt.unpack
    def test_pending_soft_guest_down_becomes_hard(self, vm_state, power):
        self._assert_became_hard(task_states.REBOOT_PENDING, vm_state, power)

    @ddt.idata((vm, p) for vm in VM_STATES
               for p in (power_state.RUNNING,) + GUEST_DOWN)
    @ddt.unpack
    def test_pending_hard_retries_hard(self, vm_state, power):
        _instance, mock_save = self._assert_retried(
            task_states.REBOOT_PENDING_HARD, vm_state, power, 'HARD')
        mock_save.assert_not_called()

    # Requested: reboot_instance died before its first save, so the driver
    # was never called and the reboot is retried whatever the guest does.

    def test_rebooting_active_running_retries_soft(self):
        """A soft reboot that reached the host is retried, not dropped.

        The rule used to take a running guest in REBOOTING for rebooted
        and record ACTIVE, but reboot_instance saves REBOOT_PENDING before
        it calls the driver: REBOOTING means the guest never rebooted.
        """
        _instance, mock_save = self._assert_retried(
            task_states.REBOOTING, vm_states.ACTIVE, power_state.RUNNING,
            'SOFT')
        mock_save.assert_not_called()

    @ddt.data(vm_states.STOPPED, vm_states.PAUSED, vm_states.SUSPENDED,
              vm_states.ERROR)
    def test_rebooting_running_not_soft_rebootable_becomes_hard(
            self, vm_state):
        """A running guest in REBOOTING was recorded ACTIVE, not rebooted.

        A soft reboot is not allowed from these vm_states, so the retry
        is hard.
        """
        self._assert_became_hard(task_states.REBOOTING, vm_state,
                                 power_state.RUNNING)

    @ddt.data(*VM_STATES)
    def test_rebooting_hard_running_retries_hard(self, vm_state):
        """A hard reboot of a running (maybe hung) guest is retried.

        The rule used to record ACTIVE for a running guest in
        REBOOTING_HARD, so a hard reboot sent to a hung guest did nothing.
        """
        _instance, mock_save = self._assert_retried(
            task_states.REBOOTING_HARD, vm_state, power_state.RUNNING,
            'HARD')
        mock_save.assert_not_called()

    def _init_rerun(self, task_state, reboot_type):
        """Start up with the real reboot_instance, against a database that

        checks every compare-and-swap; return the instance, the driver's
        reboot and the task states the database went through.
        """
        self.mock_get_info.return_value = hardware.InstanceInfo(
            state=power_state.RUNNING)
        instance = self._instance(task_state)
        db = [task_state]

        def save(expected_task_state=None, **kwargs):
            if expected_task_state is not None:
                expected = expected_task_state
                if not isinstance(expected, (list, tuple)):
                    expected = [expected]
                if db[-1] not in expected:
                    raise exception.UnexpectedTaskStateError(
                        instance_uuid=instance.uuid, expected=expected,
                        actual=db[-1])
            db.append(instance.task_state)

        with test.nested(
            mock.patch.object(instance, 'save', side_effect=save),
            mock.patch.object(objects.BlockDeviceMappingList,
                              'get_by_instance_uuid',
                              return_value=objects.BlockDeviceMappingList(
                                  objects=[])),
            mock.patch.object(self.compute.network_api,
                              'get_instance_nw_info',
                              return_value=network_model.NetworkInfo()),
            base.share_info_patch(self.compute),
            # Notifications read fields a test instance has not loaded.
            mock.patch.object(self.compute, '_notify_about_instance_usage'),
            mock.patch.object(compute_utils, 'notify_about_instance_action'),
            mock.patch.object(self.compute.driver, 'reboot'),
        ) as (_save, _bdms, _nw_info, _shares, _usage, _action,
              mock_driver_reboot):
            self.compute._init_instance(self.context, instance)
        return instance, mock_driver_reboot, db

    @ddt.data((task_states.REBOOTING, 'SOFT'),
              (task_states.REBOOTING_HARD, 'HARD'))
    @ddt.unpack
    def test_rebooting_rerun_passes_its_own_compare_and_swap(
            self, task_state, reboot_type):
        """reboot_instance accepts REBOOTING(_HARD) as it finds it.

        Its first save expects any task state of the reboot's kind, so the
        retry reaches the driver and ends ACTIVE; the rule used to record
        ACTIVE without calling the driver at all.
        """
        instance, mock_driver_reboot, db = self._init_rerun(task_state,
                                                            reboot_type)
        mock_driver_reboot.assert_called_once_with(
            mock.ANY, instance, mock.ANY, reboot_type,
            block_device_info=mock.ANY, accel_info=mock.ANY,
            share_info=mock.ANY, bad_volumes_callback=mock.ANY)
        pending, started = (
            (task_states.REBOOT_PENDING, task_states.REBOOT_STARTED)
            if reboot_type == 'SOFT' else
            (task_states.REBOOT_PENDING_HARD,
             task_states.REBOOT_STARTED_HARD))
        self.assertEqual([task_state, pending, started, None], db)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.mock_fault.assert_not_called()

    # Started, guest not running: a hard reboot brings it up.

    @ddt.idata((t, vm, p)
               for t in (task_states.REBOOTING, task_states.REBOOT_STARTED)
               for vm in VM_STATES for p in GUEST_DOWN)
    @ddt.unpack
    def test_soft_started_guest_down_becomes_hard(self, task_state,
                                                  vm_state, power):
        self._assert_became_hard(task_state, vm_state, power)

    @ddt.idata((t, vm, p)
               for t in (task_states.REBOOTING_HARD,
                         task_states.REBOOT_STARTED_HARD)
               for vm in VM_STATES for p in GUEST_DOWN)
    @ddt.unpack
    def test_hard_started_guest_down_retries_hard(self, task_state,
                                                  vm_state, power):
        _instance, mock_save = self._assert_retried(task_state, vm_state,
                                                    power, 'HARD')
        mock_save.assert_not_called()

    def test_error_rebooting_hard_guest_down_retries_hard(self):
        """Stock nova 34 returns early for ERROR, so ERROR+REBOOTING_HARD

        stays stuck for ever; the rule finishes the hard reboot.
        """
        self._assert_retried(task_states.REBOOTING_HARD, vm_states.ERROR,
                             power_state.SHUTDOWN, 'HARD')

    # Started, guest running: the driver was called, only the state is
    # recorded.

    @ddt.idata((t, vm) for t in sorted(reboot.STARTED) for vm in VM_STATES)
    @ddt.unpack
    def test_started_guest_running_settles_active(self, task_state,
                                                  vm_state):
        self._assert_settled(task_state, vm_state)

    def test_error_reboot_started_hard_guest_running_settles_active(self):
        """Stock nova 34 leaves ERROR+REBOOT_STARTED_HARD stuck even when

        the guest came up.
        """
        self._assert_settled(task_states.REBOOT_STARTED_HARD,
                             vm_states.ERROR)

    # Lost races: the request that won goes on, nothing is recorded.

    def _lost_race(self, task_state):
        return exception.UnexpectedTaskStateError(
            instance_uuid='fake', expected=task_state, actual='deleting')

    def test_lost_race_on_settle(self):
        instance, mock_reboot, mock_save = self._init(
            task_states.REBOOT_STARTED, vm_states.ACTIVE, power_state.RUNNING,
            save_error=self._lost_race(task_states.REBOOT_STARTED))
        mock_save.assert_called_once_with(
            expected_task_state=task_states.REBOOT_STARTED)
        mock_reboot.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_lost_race_on_becoming_hard_does_not_reboot(self):
        instance, mock_reboot, mock_save = self._init(
            task_states.REBOOTING, vm_states.ACTIVE, power_state.SHUTDOWN,
            save_error=self._lost_race(task_states.REBOOTING))
        mock_save.assert_called_once_with(
            expected_task_state=task_states.REBOOTING)
        mock_reboot.assert_not_called()
        self.mock_fault.assert_not_called()

    # Failures: ERROR plus a fault, start-up goes on.

    def test_retry_failure_sets_error(self):
        """Stock nova 34 does not catch a failing reboot retry, so the

        exception escapes _init_instance and aborts nova-compute start-up
        (init_host) for every instance on the host.
        """
        instance, mock_reboot, mock_save = self._init(
            task_states.REBOOT_STARTED_HARD, vm_states.ACTIVE,
            power_state.SHUTDOWN,
            reboot_error=test.TestingException('hypervisor says no'))
        mock_reboot.assert_called_once()
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.REBOOT_STARTED_HARD])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance, 'hard reboot interrupted by nova-compute '
                                   'restart: hypervisor says no')

    def test_soft_retry_failure_names_the_soft_reboot(self):
        instance, mock_reboot, mock_save = self._init(
            task_states.REBOOT_PENDING, vm_states.ACTIVE,
            power_state.SHUTDOWN,
            reboot_error=test.TestingException('boom'))
        # The CAS to the hard state, then ERROR expecting either state.
        self.assertEqual(2, mock_save.call_count)
        self.assertEqual(
            {task_states.REBOOT_PENDING, task_states.REBOOT_PENDING_HARD},
            set(mock_save.call_args[1]['expected_task_state']))
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'reboot interrupted by nova-compute '
                                   'restart: boom')

    def test_retry_failure_then_lost_race_records_no_fault(self):
        instance, mock_reboot, mock_save = self._init(
            task_states.REBOOT_PENDING_HARD, vm_states.ACTIVE,
            power_state.SHUTDOWN,
            reboot_error=test.TestingException('boom'),
            save_error=self._lost_race(task_states.REBOOT_PENDING_HARD))
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.REBOOT_PENDING_HARD])
        self.mock_fault.assert_not_called()

    # Not owned: vm_states from which nova does not allow a hard reboot.

    @ddt.data(vm_states.RESCUED, vm_states.SHELVED, vm_states.RESIZED,
              vm_states.BUILDING)
    def test_not_owned_without_hard_reboot(self, vm_state):
        instance = self._instance(task_states.REBOOT_STARTED_HARD,
                                  vm_state=vm_state)
        self.assertFalse(reboot.owns(instance))
