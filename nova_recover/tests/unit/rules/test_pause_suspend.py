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
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.virt import hardware

from nova_recover.tests.unit import base


class PauseRecoveryTestCase(base.InitInstanceTestCase):

    def _init(self, instance, guest_state, save_error=None, after=None):
        """Start up with the guest in guest_state (None: it is gone).

        after: the guest's state once the recovery has acted on it.
        """
        if guest_state is None:
            info = {'side_effect': exception.InstanceNotFound(
                instance_id=instance.uuid)}
        else:
            states = [guest_state]

            def get_info(instance, use_cache=True):
                state = states[0]
                states[:] = [after or guest_state]
                return hardware.InstanceInfo(state=state)
            info = {'side_effect': get_info}
        with test.nested(
            mock.patch.object(self.compute.driver, 'get_info', **info),
            mock.patch.object(self.compute.driver, 'plug_vifs',
                              new=self.mock_plug),
            mock.patch.object(self.compute.driver,
                              'resume_state_on_host_boot'),
            mock.patch.object(instance, 'save', side_effect=save_error),
        ) as (_info, mock_plug, mock_resume, mock_save):
            self.compute._init_instance(self.context, instance)
        # The guest is recorded as it is, so nova's start-up path never
        # "resumes" it on top of the recovery.
        mock_resume.assert_not_called()
        return mock_plug, mock_save

    def _assert_settled(self, task_state, guest_state, vm_state,
                        from_vm_state=vm_states.ACTIVE):
        instance = self._instance(task_state, vm_state=from_vm_state,
                                  power=power_state.RUNNING)
        mock_plug, mock_save = self._init(instance, guest_state)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.assertEqual(guest_state, instance.power_state)
        self.assertIsNone(instance.task_state)
        self.mock_fault.assert_not_called()
        # Nova's normal start-up path still runs for the settled instance.
        mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_pausing_guest_paused(self):
        self._assert_settled(task_states.PAUSING, power_state.PAUSED,
                             vm_states.PAUSED)

    def test_pausing_guest_shut_down(self):
        self._assert_settled(task_states.PAUSING, power_state.SHUTDOWN,
                             vm_states.STOPPED)

    def test_unpausing_guest_running(self):
        self._assert_settled(task_states.UNPAUSING, power_state.RUNNING,
                             vm_states.ACTIVE, from_vm_state=vm_states.PAUSED)

    def test_unpausing_guest_crashed(self):
        self._assert_settled(task_states.UNPAUSING, power_state.CRASHED,
                             vm_states.STOPPED, from_vm_state=vm_states.PAUSED)

    def test_suspending_guest_suspended(self):
        self._assert_settled(task_states.SUSPENDING, power_state.SUSPENDED,
                             vm_states.SUSPENDED)

    def test_suspending_guest_shut_down_is_suspended(self):
        # libvirt shows a managed-saved guest as shut off: only a resume
        # keeps its memory.
        self._assert_settled(task_states.SUSPENDING, power_state.SHUTDOWN,
                             vm_states.SUSPENDED)

    def test_suspending_guest_crashed(self):
        self._assert_settled(task_states.SUSPENDING, power_state.CRASHED,
                             vm_states.STOPPED)

    def test_resuming_guest_running(self):
        self._assert_settled(task_states.RESUMING, power_state.RUNNING,
                             vm_states.ACTIVE,
                             from_vm_state=vm_states.SUSPENDED)

    def test_resuming_guest_crashed(self):
        self._assert_settled(task_states.RESUMING, power_state.CRASHED,
                             vm_states.STOPPED,
                             from_vm_state=vm_states.SUSPENDED)

    def _assert_rerun(self, task_state, from_vm_state, guest_state, after,
                      method, driver_method, action, vm_state):
        """The real manager method re-runs from the task state found.

        Its own compare-and-swap expects that very state; the driver is
        the fake one, its guest in after once the method acted on it.
        """
        instance = self._instance(task_state, vm_state=from_vm_state,
                                  power=power_state.RUNNING)
        # suspend_instance keeps the vm_state there, resume brings it back.
        instance.system_metadata = (
            {'old_vm_state': vm_states.ACTIVE}
            if task_state == task_states.RESUMING else {})
        instance.obj_reset_changes()
        real = getattr(self.compute, method)
        with test.nested(
            mock.patch.object(self.compute, method, wraps=real),
            mock.patch.object(self.compute.driver, driver_method),
            # Notifications read fields a test instance has not loaded.
            mock.patch.object(self.compute, '_notify_about_instance_usage'),
            mock.patch.object(compute_utils, 'notify_about_instance_action'),
            # What resume_instance reads before it calls the driver.
            mock.patch.object(objects.BlockDeviceMappingList,
                              'get_by_instance_uuid',
                              return_value=objects.BlockDeviceMappingList(
                                  objects=[])),
            mock.patch.object(self.compute.network_api,
                              'get_instance_nw_info',
                              return_value=network_model.NetworkInfo()),
            base.share_info_patch(self.compute),
        ) as (mock_method, mock_driver, _usage, _action, _bdms, _nw, _sh):
            mock_plug, mock_save = self._init(instance, guest_state,
                                              after=after)
        self.assertRerun(mock_method, instance, action)
        mock_driver.assert_called_once()
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.assertEqual(after, instance.power_state)
        self.assertIsNone(instance.task_state)
        self.mock_fault.assert_not_called()
        # Nova's normal start-up path still runs for the instance.
        mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_pausing_guest_running_retries_pause(self):
        """A pause that reached the host but not the guest is re-run.

        The rule used to record the running guest as ACTIVE, dropping the
        pause the user asked for.
        """
        self._assert_rerun(task_states.PAUSING, vm_states.ACTIVE,
                           power_state.RUNNING, power_state.PAUSED,
                           'pause_instance', 'pause',
                           instance_actions.PAUSE, vm_states.PAUSED)

    def test_suspending_guest_running_retries_suspend(self):
        """A suspend that reached the host but not the guest is re-run.

        The rule used to record the running guest as ACTIVE, dropping the
        suspend the user asked for.
        """
        self._assert_rerun(task_states.SUSPENDING, vm_states.ACTIVE,
                           power_state.RUNNING, power_state.SUSPENDED,
                           'suspend_instance', 'suspend',
                           instance_actions.SUSPEND, vm_states.SUSPENDED)

    def test_resuming_guest_suspended_retries_resume(self):
        """A resume whose guest is still suspended is re-run.

        The rule used to record it SUSPENDED, dropping the resume the user
        asked for.
        """
        self._assert_rerun(task_states.RESUMING, vm_states.SUSPENDED,
                           power_state.SUSPENDED, power_state.RUNNING,
                           'resume_instance', 'resume',
                           instance_actions.RESUME, vm_states.ACTIVE)

    def test_resuming_guest_shut_down_retries_resume(self):
        """libvirt shows a managed-saved guest as shut off: resume it.

        The rule used to record it SUSPENDED, dropping the resume the user
        asked for; the resume restores the saved memory.
        """
        self._assert_rerun(task_states.RESUMING, vm_states.SUSPENDED,
                           power_state.SHUTDOWN, power_state.RUNNING,
                           'resume_instance', 'resume',
                           instance_actions.RESUME, vm_states.ACTIVE)

    def _assert_guest_gone(self, task_state, operation, guest_state):
        instance = self._instance(task_state)
        mock_plug, mock_save = self._init(instance, guest_state)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance,
                         '%s interrupted by nova-compute restart' % operation)
        mock_plug.assert_not_called()

    def test_pausing_guest_gone(self):
        self._assert_guest_gone(task_states.PAUSING, 'pause', None)

    def test_suspending_guest_nostate(self):
        self._assert_guest_gone(task_states.SUSPENDING, 'suspend',
                                power_state.NOSTATE)

    def test_resuming_guest_gone(self):
        self._assert_guest_gone(task_states.RESUMING, 'resume', None)

    def test_unpausing_guest_paused_retries_unpause(self):
        instance = self._instance(task_states.UNPAUSING,
                                  vm_state=vm_states.PAUSED,
                                  power=power_state.PAUSED)

        def unpause(context, instance):
            # What the manager's unpause leaves behind on success.
            instance.vm_state = vm_states.ACTIVE
            instance.power_state = power_state.RUNNING
            instance.task_state = None

        with mock.patch.object(self.compute, 'unpause_instance',
                               side_effect=unpause) as mock_unpause:
            mock_plug, mock_save = self._init(instance, power_state.PAUSED,
                                              after=power_state.RUNNING)
        self.assertRerun(mock_unpause, instance, instance_actions.UNPAUSE)
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()
        mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_unpause_retry_lost_race(self):
        instance = self._instance(task_states.UNPAUSING,
                                  vm_state=vm_states.PAUSED,
                                  power=power_state.PAUSED)
        with mock.patch.object(
                self.compute, 'unpause_instance',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='unpausing',
                    actual='deleting')):
            mock_plug, mock_save = self._init(instance, power_state.PAUSED)
        mock_save.assert_not_called()
        self.mock_fault.assert_not_called()
        mock_plug.assert_not_called()

    def test_unpause_retry_failure_errors_out(self):
        instance = self._instance(task_states.UNPAUSING,
                                  vm_state=vm_states.PAUSED,
                                  power=power_state.PAUSED)
        with mock.patch.object(
                self.compute, 'unpause_instance',
                side_effect=exception.HypervisorUnavailable(host='fake')):
            mock_plug, mock_save = self._init(instance, power_state.PAUSED)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.UNPAUSING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance,
                         'unpause interrupted by nova-compute restart')
        mock_plug.assert_not_called()

    def test_suspend_retry_failure_errors_out(self):
        instance = self._instance(task_states.SUSPENDING)
        with mock.patch.object(
                self.compute, 'suspend_instance',
                side_effect=exception.HypervisorUnavailable(host='fake')):
            mock_plug, mock_save = self._init(instance, power_state.RUNNING)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.SUSPENDING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance,
                         'suspend interrupted by nova-compute restart')
        mock_plug.assert_not_called()

    def test_lost_race_leaves_instance_and_records_no_fault(self):
        instance = self._instance(task_states.SUSPENDING)
        mock_plug, mock_save = self._init(
            instance, power_state.SUSPENDED,
            save_error=exception.UnexpectedTaskStateError(
                instance_uuid=instance.uuid, expected='suspending',
                actual='deleting'))
        mock_save.assert_called_once_with(
            expected_task_state=task_states.SUSPENDING)
        self.mock_fault.assert_not_called()
        mock_plug.assert_not_called()
