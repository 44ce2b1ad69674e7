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

from nova.compute import manager
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova.objects import fields
from nova import test
from nova.virt import hardware
from oslo_utils.fixture import uuidsentinel as uuids

from nova_recover.startup_recovery import base as recover_base
from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery import state as recovery_state
from nova_recover.tests.unit import base


class EngineBase(base.InitInstanceTestCase):
    """A compute whose guests run, and a stand-in rule on demand."""

    def setUp(self):
        super().setUp()
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(state=power_state.RUNNING)))

    def _use_rule(self, outcome=recover_base.HANDLED, error=None):
        rule = mock.Mock(spec=['__name__', 'STATES', 'OWNED_VM_STATES',
                               'owns', 'recover'])
        rule.__name__ = 'nova_recover.startup_recovery.rules.stand_in'
        # Declared for every state, as the engine only asks the rules that
        # list the instance's task_state or vm_state.
        rule.STATES = frozenset(fields.InstanceTaskState.ALL)
        rule.OWNED_VM_STATES = frozenset(fields.InstanceState.ALL)
        rule.owns.return_value = True
        rule.recover.return_value = outcome
        rule.recover.side_effect = error
        self.useFixture(test.fixtures.MockPatchObject(order, 'RULES',
                                                      (rule,)))
        return rule


@ddt.ddt
class EngineTestCase(EngineBase):
    """The engine between nova's start-up and the rules.

    Engine-only behaviour is driven with a stand-in rule, so that what
    is asserted is the engine's contract and not one rule's.
    """

    # Outcomes

    def test_continue_runs_nova_path(self):
        rule = self._use_rule(recover_base.CONTINUE)
        instance = self._instance(None)
        self.compute._init_instance(self.context, instance)
        rule.recover.assert_called_once_with(self.compute, self.context,
                                             instance)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_handled_skips_nova_path(self):
        rule = self._use_rule(recover_base.HANDLED)
        instance = self._instance(None)
        self.compute._init_instance(self.context, instance)
        rule.recover.assert_called_once_with(self.compute, self.context,
                                             instance)
        self.mock_plug.assert_not_called()

    def test_no_rule_runs_nova_path_only(self):
        instance = self._instance(None)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        mock_save.assert_not_called()

    def test_other_host_goes_to_nova_only(self):
        """Nova's own guard leaves an instance owned elsewhere alone."""
        instance = self._instance(task_states.DELETING)
        instance.host = 'other-host'
        instance.obj_reset_changes()
        with test.nested(
            mock.patch.object(evidence, 'queued', new=self.mock_queued),
            mock.patch.object(self.compute, '_delete_instance'),
            mock.patch.object(instance, 'save'),
            mock.patch.object(manager.LOG, 'warning'),
        ) as (mock_queued, mock_delete, mock_save, mock_warning):
            self.compute._init_instance(self.context, instance)
        mock_queued.assert_not_called()
        mock_delete.assert_not_called()
        mock_save.assert_not_called()
        self.assertIn('appears to not be owned',
                      mock_warning.call_args[0][0])
        self.mock_fault.assert_not_called()

    # Failures never escape

    def test_rule_raising_sets_error(self):
        self._use_rule(error=test.TestingException('rule broke'))
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.POWERING_ON])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance, 'start interrupted by nova-compute '
                                   'restart: rule broke')
        self.mock_plug.assert_not_called()

    def test_rule_failing_with_its_reason_is_not_prefixed_twice(self):
        """A rule's RecoveryFailed already says what was interrupted.

        Failed before: the fault read "start interrupted by nova-compute
        restart: start interrupted by nova-compute restart: ...".
        """
        self._use_rule(error=recover_base.RecoveryFailed(operation='start',
                                                 reason='guest gone'))
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with mock.patch.object(instance, 'save'):
            self.compute._init_instance(self.context, instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertEqual('start interrupted by nova-compute restart: '
                         'guest gone',
                         str(self.mock_fault.call_args[0][2]))

    def test_rule_raising_after_moving_task_expects_either(self):
        """A rule that moved the task before it failed: ERROR expects both

        the state it found and the state it left.
        """
        instance = self._instance(task_states.REBOOTING)

        def move_then_fail(manager, context, inst):
            inst.task_state = task_states.REBOOT_PENDING_HARD
            raise test.TestingException('boom')

        self._use_rule(error=move_then_fail)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        self.assertEqual(
            {task_states.REBOOTING, task_states.REBOOT_PENDING_HARD},
            set(mock_save.call_args[1]['expected_task_state']))
        self.assertFault(instance, 'reboot interrupted by nova-compute '
                                   'restart: boom')

    def test_nova_path_raising_leaves_healthy_instance(self):
        """A healthy server is never put in ERROR because the host is not

        ready: before, a failure of nova's own step (plug_vifs while Open
        vSwitch is not up) put every server of the host in ERROR with a
        false "start-up interrupted" fault. Now the server is left as it
        is, and start-up fails at the end of init_host, as stock's does.
        """
        self.mock_plug.side_effect = test.TestingException('vif broke')
        first, second = (self._instance(None, uuid=uuid)
                         for uuid in (uuids.first, uuids.second))
        with test.nested(
            mock.patch.object(first, 'save'),
            mock.patch.object(second, 'save'),
        ) as (save_first, save_second):
            self.compute._init_instance(self.context, first)
            self.compute._init_instance(self.context, second)
        save_first.assert_not_called()
        save_second.assert_not_called()
        self.assertEqual(2, self.mock_plug.call_count)
        for instance in (first, second):
            self.assertEqual(vm_states.ACTIVE, instance.vm_state)
            self.assertIsNone(instance.task_state)
        self.mock_fault.assert_not_called()
        raised = self.assertRaises(test.TestingException,
                                   engine.raise_start_up_failure,
                                   self.compute)
        self.assertEqual('vif broke', str(raised))
        # Raised once: the next start-up starts with nothing to raise.
        engine.raise_start_up_failure(self.compute)

    def test_nova_path_raising_after_continue_keeps_the_recovery(self):
        """The rule's recovery stands when nova's step then fails."""
        rule = self._use_rule(recover_base.CONTINUE)
        self.mock_plug.side_effect = test.TestingException('vif broke')
        # Owned by its vm_state: nova's path then has no task to handle.
        instance = self._instance(None)
        self.compute._init_instance(self.context, instance)
        rule.recover.assert_called_once_with(self.compute, self.context,
                                             instance)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.mock_fault.assert_not_called()
        self.assertRaises(test.TestingException,
                          engine.raise_start_up_failure, self.compute)

    def test_recovery_hangs_one_attribute_on_the_manager(self):
        """Whatever start-up recovery keeps, it keeps in one place."""
        before = set(vars(self.compute))
        self.mock_plug.side_effect = test.TestingException('vif broke')
        for task_state in (None, task_states.IMAGE_UPLOADING):
            instance = self._instance(task_state)
            with mock.patch.object(instance, 'save'):
                self.compute._init_instance(self.context, instance)
        self.assertEqual({recovery_state.ATTRIBUTE},
                         set(vars(self.compute)) - before)
        self.assertRaises(test.TestingException,
                          engine.raise_start_up_failure, self.compute)

    def test_gates_are_told_one_request(self):
        """Each gate reads the instance's request, read once, by name."""
        rule = self._use_rule(recover_base.HANDLED)
        gate = mock.Mock(spec=['holds', 'recovered'])
        gate.holds.return_value = False
        self.useFixture(test.fixtures.MockPatchObject(order, 'GATES',
                                                      (gate, gate)))
        instance = self._instance(task_states.POWERING_ON)
        self.compute._init_instance(self.context, instance)
        self.assertEqual(2, gate.holds.call_count)
        request = gate.holds.call_args[0][0]
        self.assertEqual([mock.call(request)] * 2,
                         gate.holds.call_args_list)
        self.assertEqual([mock.call(request, recover_base.RECOVERED)] * 2,
                         gate.recovered.call_args_list)
        self.assertEqual(
            (self.compute, self.context, instance,
             task_states.POWERING_ON, rule),
            (request.manager, request.context, request.instance,
             request.task_state, request.rule))
        # nova's own path, which a gate that holds an instance runs.
        self.mock_plug.assert_not_called()
        healthy = self._instance(None)
        request.nova_path(self.context, healthy)
        self.mock_plug.assert_called_once_with(healthy, mock.ANY)

    def test_nothing_failed_raises_nothing(self):
        self.compute._init_instance(self.context, self._instance(None))
        engine.raise_start_up_failure(self.compute)

    @ddt.data(test.TestingException('db down'),
              exception.UnexpectedTaskStateError(
                  instance_uuid='fake', expected='powering-on',
                  actual='deleting'),
              exception.InstanceNotFound(instance_id='fake'))
    def test_error_save_raising_leaves_instance(self, save_error):
        """No exception escapes, and no fault is written beside a state

        that did not change.
        """
        self._use_rule(error=test.TestingException('rule broke'))
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with mock.patch.object(instance, 'save',
                               side_effect=save_error) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.POWERING_ON])
        self.mock_fault.assert_not_called()
        self.mock_plug.assert_not_called()

    def test_fault_write_raising_is_swallowed(self):
        self._use_rule(error=test.TestingException('rule broke'))
        self.mock_fault.side_effect = test.TestingException('db down')
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once()
        self.assertEqual(vm_states.ERROR, instance.vm_state)
