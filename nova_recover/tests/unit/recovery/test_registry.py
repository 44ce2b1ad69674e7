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

import inspect
import re

from nova.compute import api as compute_api
from nova.compute import instance_actions
from nova.compute import manager as compute_manager
from nova.compute import task_states
from nova.compute import vm_states
from nova.objects import fields
from nova import test

from nova_recover.startup_recovery import registry


def _constants(module):
    return {value for name, value in vars(module).items()
            if name.isupper() and isinstance(value, str)}


class RegistryTestCase(test.NoDBTestCase):
    """The registry holds nova's own values, for the nova it runs on.

    The registry is plain data so that the audit need not import nova;
    these tests tie each string to the installed nova, so a nova release
    that renames or adds a task state, an action or a manager method
    fails here rather than at a customer's start-up.
    """

    def test_one_record_per_installed_task_state(self):
        names = [state.name for state in registry.TASK_STATES]
        self.assertEqual(len(names), len(set(names)))
        installed = set(fields.InstanceTaskState.ALL) | _constants(
            task_states)
        self.assertEqual(sorted(installed), sorted(names))

    def test_vm_states_are_nova_vm_states(self):
        known = set(fields.InstanceState.ALL)
        for state in registry.TASK_STATES:
            self.assertTrue(state.vm_states, state.name)
            self.assertEqual(set(), set(state.vm_states) - known,
                             state.name)

    def test_reboot_vm_states_follow_nova_guards(self):
        for state in registry.TASK_STATES:
            if state.operation == 'reboot':
                self.assertEqual(vm_states.ALLOW_SOFT_REBOOT,
                                 list(state.vm_states), state.name)
            elif state.operation == 'hard reboot':
                self.assertEqual(vm_states.ALLOW_HARD_REBOOT,
                                 list(state.vm_states), state.name)

    def test_action_names_are_nova_actions(self):
        known = _constants(instance_actions)
        for state in registry.TASK_STATES:
            self.assertTrue(state.actions, state.name)
            self.assertEqual(set(), set(state.actions) - known, state.name)

    def test_methods_record_compute_events(self):
        source = inspect.getsource(compute_manager.ComputeManager)
        for state in registry.TASK_STATES:
            self.assertTrue(state.methods, state.name)
            self.assertEqual(set(), set(state.hands_on) - set(state.methods),
                             state.name)
            for method in state.methods:
                match = re.search(
                    r'((?:    @[^\n]*\n)+)    def %s\(' % re.escape(method),
                    source)
                self.assertIsNotNone(match, method)
                self.assertIn("wrap_instance_event(prefix='compute')",
                              match.group(1), method)

    def test_every_state_the_api_saves_says_so(self):
        source = inspect.getsource(compute_api)
        found = set(re.findall(r'task_state\s*=\s*task_states\.(\w+)',
                               source))
        # ALLOW_REBOOT is a list of allowed states in a decorator.
        api_set = {getattr(task_states, name) for name in found
                   if name != 'ALLOW_REBOOT'}
        saved_by_api = {state.name for state in registry.TASK_STATES
                        if registry.API in state.set_by}
        self.assertEqual(set(), api_set - saved_by_api)

    def test_setters_are_known(self):
        known = {registry.API, registry.CONDUCTOR, registry.THIS_COMPUTE,
                 registry.OTHER_COMPUTE}
        for state in registry.TASK_STATES:
            self.assertEqual(set(), set(state.set_by) - known, state.name)
            self.assertEqual(len(state.set_by), len(set(state.set_by)))

    def test_only_states_saved_before_a_cast_may_be_queued(self):
        for state in registry.TASK_STATES:
            if state.checked:
                self.assertTrue(state.saved_before_cast, state.name)
            if state.unchecked is not None:
                self.assertTrue(state.saved_before_cast, state.name)
                self.assertTrue(state.unchecked.strip(), state.name)

    def test_operation_names_every_state(self):
        for state in registry.TASK_STATES:
            self.assertEqual(state.operation,
                             registry.operation(state.name))
            self.assertTrue(state.end.strip(), state.name)
        self.assertIsNone(registry.operation('no-such-state'))
