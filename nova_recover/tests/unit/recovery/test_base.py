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

"""What every rule shares: the compare-and-swap, ERROR and its fault."""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import context as nova_context
from nova import exception
from nova import objects
from nova import test
from nova.tests.unit import fake_instance

from nova_recover.startup_recovery import base


class BaseTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()

    def _instance(self, task_state, vm_state=vm_states.ACTIVE):
        instance = fake_instance.fake_instance_obj(
            self.context, uuid=uuids.instance, task_state=task_state,
            vm_state=vm_state)
        instance.obj_reset_changes()
        return instance

    def test_settle_saves_by_compare_and_swap(self):
        instance = self._instance(task_states.POWERING_OFF)
        with mock.patch.object(instance, 'save') as save:
            self.assertTrue(base.settle(
                instance, task_states.POWERING_OFF, task_state=None,
                vm_state=vm_states.STOPPED))
        save.assert_called_once_with(
            expected_task_state=task_states.POWERING_OFF)
        self.assertEqual(vm_states.STOPPED, instance.vm_state)
        self.assertIsNone(instance.task_state)

    def test_settle_backs_off_for_a_newer_request_or_a_delete(self):
        for error in (exception.UnexpectedTaskStateError(
                          instance_uuid=uuids.instance,
                          expected='powering-off', actual='deleting'),
                      exception.InstanceNotFound(instance_id=uuids.instance)):
            instance = self._instance(task_states.POWERING_OFF)
            with mock.patch.object(instance, 'save', side_effect=error):
                self.assertFalse(base.settle(
                    instance, task_states.POWERING_OFF, task_state=None))

    def test_set_error_writes_the_fault_after_the_state(self):
        instance = self._instance(task_states.REBUILDING)
        calls = []
        with mock.patch.object(
                instance, 'save',
                side_effect=lambda **kw: calls.append(('save', kw))), \
                mock.patch.object(
                    compute_utils, 'add_instance_fault_from_exc',
                    side_effect=lambda *a: calls.append(('fault', a[2]))):
            fault = base.interrupted(instance)
            self.assertTrue(base.set_error(
                self.context, instance, task_states.REBUILDING, fault))
        self.assertEqual(
            [('save', {'expected_task_state': task_states.REBUILDING}),
             ('fault', fault)], calls)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)

    def test_set_error_writes_no_fault_when_it_lost_the_race(self):
        instance = self._instance(task_states.REBUILDING)
        newer = exception.UnexpectedTaskStateError(
            instance_uuid=uuids.instance, expected='rebuilding',
            actual='deleting')
        with mock.patch.object(instance, 'save', side_effect=newer), \
                mock.patch.object(compute_utils,
                                  'add_instance_fault_from_exc') as fault:
            self.assertFalse(base.set_error(
                self.context, instance, task_states.REBUILDING,
                base.interrupted(instance)))
        fault.assert_not_called()

    def test_a_fault_that_cannot_be_written_leaves_the_error(self):
        instance = self._instance(task_states.REBUILDING)
        with mock.patch.object(instance, 'save'), mock.patch.object(
                compute_utils, 'add_instance_fault_from_exc',
                side_effect=test.TestingException('db')):
            self.assertTrue(base.set_error(
                self.context, instance, task_states.REBUILDING,
                base.interrupted(instance)))
        self.assertEqual(vm_states.ERROR, instance.vm_state)

    def test_operation_names(self):
        cases = [
            (None, vm_states.BUILDING, 'build'),
            (None, vm_states.DELETED, 'delete'),
            (task_states.SPAWNING, vm_states.SHELVED_OFFLOADED, 'unshelve'),
            (task_states.SPAWNING, vm_states.BUILDING, 'build'),
            (task_states.POWERING_OFF, vm_states.ACTIVE, 'stop'),
            (None, vm_states.ACTIVE, 'start-up'),
        ]
        for task_state, vm_state, operation in cases:
            self.assertEqual(
                operation,
                base.operation_of(self._instance(task_state, vm_state)),
                (task_state, vm_state))

    def test_interrupted_says_which_operation(self):
        instance = self._instance(task_states.REBOOTING)
        self.assertIsInstance(base.interrupted(instance), base.Interrupted)
        failed = base.interrupted(instance, reason='guest gone')
        self.assertIsInstance(failed, base.RecoveryFailed)
        self.assertIn('guest gone', str(failed))

    def test_a_rerun_gets_an_action_of_its_own(self):
        instance = self._instance(task_states.POWERING_OFF)
        with mock.patch.object(objects.InstanceAction,
                               'action_start') as start:
            rerun = base.rerun_context(self.context, instance, 'stop')
        self.assertNotEqual(self.context.request_id, rerun.request_id)
        start.assert_called_once_with(rerun, uuids.instance, 'stop',
                                      want_result=False)

    def test_a_rerun_goes_on_without_its_action(self):
        instance = self._instance(task_states.POWERING_OFF)
        with mock.patch.object(objects.InstanceAction, 'action_start',
                               side_effect=test.TestingException('down')):
            self.assertIs(self.context, base.rerun_context(
                self.context, instance, 'stop'))

    def test_notes_are_taken_once(self):
        manager = mock.Mock(spec=[])
        instance = self._instance(task_states.IMAGE_SNAPSHOT)
        self.assertEqual(set(), base.take_notes(manager, instance))
        base.tell_owner(manager, instance, base.SNAPSHOT_INTERRUPTED)
        self.assertEqual({base.SNAPSHOT_INTERRUPTED},
                         base.take_notes(manager, instance))
        self.assertEqual(set(), base.take_notes(manager, instance))
