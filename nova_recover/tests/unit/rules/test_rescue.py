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
from nova.virt import hardware

from nova_recover.startup_recovery import guest_facts
from nova_recover.tests.unit import base


class RescueFacts(guest_facts.UnknownGuestFacts):
    """A driver that tells whether unrescue.xml exists and which guest
    is defined.
    """

    def __init__(self, record, rescue_guest):
        self.record = record
        self.rescue_guest = rescue_guest
        self.removed = []

    def has_unrescue_record(self, instance):
        return self.record

    def runs_rescue_guest(self, instance):
        return self.rescue_guest

    def remove_rescue_leftovers(self, instance):
        self.removed.append(instance)


def _mock_driver(case):
    """The driver calls the rescue rule makes, a guest that runs."""
    case.mock_info = case.useFixture(test.fixtures.MockPatchObject(
        case.compute.driver, 'get_info',
        return_value=hardware.InstanceInfo(
            state=power_state.RUNNING))).mock
    case.mock_unrescue = case.useFixture(test.fixtures.MockPatchObject(
        case.compute.driver, 'unrescue')).mock
    case.mock_rescue = case.useFixture(test.fixtures.MockPatchObject(
        case.compute.driver, 'rescue')).mock


class RescueRecoveryTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        _mock_driver(self)

    def _assert_unrescued(self, task_state, vm_state, guest, expected):
        self.mock_info.return_value = hardware.InstanceInfo(state=guest)
        instance = self._instance(task_state, vm_state=vm_state)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        # The original disk is back before the state says so.
        self.mock_unrescue.assert_called_once_with(self.context, instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(expected, instance.vm_state)
        self.assertEqual(guest, instance.power_state)
        self.mock_rescue.assert_not_called()
        self.mock_fault.assert_not_called()
        return instance

    def test_rescuing_rolls_back_to_active(self):
        instance = self._assert_unrescued(
            task_states.RESCUING, vm_states.ACTIVE, power_state.RUNNING,
            vm_states.ACTIVE)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_rescuing_stopped_guest_off_after_unrescue(self):
        self._assert_unrescued(task_states.RESCUING, vm_states.STOPPED,
                               power_state.SHUTDOWN, vm_states.STOPPED)

    def test_rescuing_error_instance(self):
        """Rescue is allowed from ERROR, which stock start-up skips."""
        self._assert_unrescued(task_states.RESCUING, vm_states.ERROR,
                               power_state.RUNNING, vm_states.ACTIVE)

    def test_unrescuing_finishes_unrescue(self):
        self._assert_unrescued(task_states.UNRESCUING, vm_states.RESCUED,
                               power_state.RUNNING, vm_states.ACTIVE)

    def test_unrescue_failure_errors_with_fault(self):
        self.mock_unrescue.side_effect = test.TestingException('no xml')
        instance = self._instance(task_states.RESCUING)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.RESCUING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'rescue interrupted by nova-compute '
                                   'restart: unrescue failed, a rescue disk '
                                   'may still be attached: no xml')
        self.mock_plug.assert_not_called()

    def test_unrescuing_failure_names_unrescue(self):
        self.mock_unrescue.side_effect = exception.InstanceNotFound(
            instance_id='fake')
        instance = self._instance(task_states.UNRESCUING,
                                  vm_state=vm_states.RESCUED)
        with mock.patch.object(instance, 'save'):
            self.compute._init_instance(self.context, instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'unrescue interrupted by nova-compute '
                                   'restart')

    def test_lost_race_raises_nothing(self):
        instance = self._instance(task_states.UNRESCUING,
                                  vm_state=vm_states.RESCUED)
        with mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='unrescuing',
                    actual='deleting')) as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.UNRESCUING)
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_save_failure_errors_with_fault(self):
        instance = self._instance(task_states.RESCUING)
        with mock.patch.object(
                instance, 'save',
                side_effect=[test.TestingException('db hiccup'), None]):
            self.compute._init_instance(self.context, instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'rescue interrupted by nova-compute '
                                   'restart: db hiccup')


class RescueFactsRecoveryTestCase(base.InitInstanceTestCase):
    """Where the driver can tell how far a rescue or unrescue got."""

    _assert_unrescued = RescueRecoveryTestCase._assert_unrescued

    def setUp(self):
        super().setUp()
        _mock_driver(self)

    def _facts(self, record, rescue_guest):
        facts = RescueFacts(record, rescue_guest)
        self.useFixture(test.fixtures.MockPatchObject(
            guest_facts, 'for_driver', return_value=facts))
        return facts

    def _recover(self, task_state, vm_state):
        instance = self._instance(task_state, vm_state=vm_state)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        return instance

    def _assert_original_guest_kept(self, task_state, vm_state):
        facts = self._facts(record=False, rescue_guest=False)
        instance = self._recover(task_state, vm_state)
        self.mock_unrescue.assert_not_called()
        self.assertEqual([instance], facts.removed)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.mock_fault.assert_not_called()
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_rescue_died_before_its_record(self):
        self._assert_original_guest_kept(task_states.RESCUING,
                                         vm_states.ACTIVE)

    def test_unrescue_died_after_deleting_its_record(self):
        self._assert_original_guest_kept(task_states.UNRESCUING,
                                         vm_states.RESCUED)

    def test_original_guest_off_without_record_is_stopped(self):
        self.mock_info.return_value = hardware.InstanceInfo(
            state=power_state.SHUTDOWN)
        self._facts(record=False, rescue_guest=False)
        instance = self._recover(task_states.RESCUING, vm_states.ACTIVE)
        self.mock_unrescue.assert_not_called()
        self.assertEqual(vm_states.STOPPED, instance.vm_state)

    def test_rescue_guest_without_record_errors(self):
        facts = self._facts(record=False, rescue_guest=True)
        instance = self._recover(task_states.UNRESCUING, vm_states.RESCUED)
        self.mock_unrescue.assert_not_called()
        self.assertEqual([], facts.removed)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFault(instance, 'unrescue interrupted by nova-compute '
                                   'restart: the rescue guest runs and the '
                                   'record of the original guest that '
                                   'unrescue needs is gone')
        self.mock_plug.assert_not_called()

    def test_record_present_unrescues(self):
        facts = self._facts(record=True, rescue_guest=True)
        self._assert_unrescued(task_states.UNRESCUING, vm_states.RESCUED,
                               power_state.RUNNING, vm_states.ACTIVE)
        self.assertEqual([], facts.removed)

    def test_no_guest_without_record_unrescues_as_before(self):
        self._facts(record=False, rescue_guest=None)
        self._assert_unrescued(task_states.RESCUING, vm_states.ACTIVE,
                               power_state.RUNNING, vm_states.ACTIVE)
