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

import dataclasses
import inspect
import types
from unittest import mock

from nova import test

from nova_recover.startup_recovery import contracts
from nova_recover.startup_recovery import order


def _parameters(function):
    """A function's parameter names, a protocol method's without self."""
    names = list(inspect.signature(function).parameters)
    return names[1:] if names[:1] == ['self'] else names


class ContractsRecoveryTestCase(test.NoDBTestCase):
    """Every rule and gate the engine runs keeps the engine's contract."""

    def _assert_signatures(self, protocol, module, methods):
        for method in methods:
            self.assertEqual(_parameters(getattr(protocol, method)),
                             _parameters(getattr(module, method)),
                             '%s.%s' % (module.__name__, method))

    def test_every_rule_is_a_rule(self):
        for rule in order.RULES:
            self.assertIsInstance(rule, contracts.Rule, rule.__name__)
            for name in ('STATES', 'OWNED_VM_STATES'):
                states = getattr(rule, name)
                self.assertIsInstance(states, frozenset,
                                      '%s.%s' % (rule.__name__, name))
                self.assertTrue(all(isinstance(s, str) for s in states),
                                '%s.%s' % (rule.__name__, name))
            # A rule that states no state is never asked about any.
            self.assertTrue(rule.STATES | rule.OWNED_VM_STATES,
                            rule.__name__)
            self._assert_signatures(contracts.Rule, rule,
                                    ('owns', 'recover'))

    def test_every_gate_is_a_gate(self):
        for gate in order.GATES:
            self.assertIsInstance(gate, contracts.Gate, gate.__name__)
            self._assert_signatures(contracts.Gate, gate,
                                    ('holds', 'recovered', 'check_options',
                                     'serving', 'finished'))

    def test_every_host_pass_is_a_host_pass_of_a_rule(self):
        for rule, host_pass in order.HOST_PASSES:
            self.assertIn(rule, order.RULES)
            self.assertIsInstance(host_pass, contracts.HostPass)
            self.assertEqual(
                ['manager', 'context'], list(
                    inspect.signature(host_pass.find).parameters))
            self.assertEqual(
                ['manager', 'context', 'instance', 'migration'], list(
                    inspect.signature(host_pass.recover).parameters))

    def test_a_module_without_recover_is_no_rule(self):
        """isinstance checks every member, so the tests above mean it."""
        stand_in = types.ModuleType('stand_in')
        stand_in.STATES = stand_in.OWNED_VM_STATES = frozenset()
        stand_in.owns = lambda instance: False
        self.assertNotIsInstance(stand_in, contracts.Rule)
        stand_in.recover = lambda manager, context, instance: None
        self.assertIsInstance(stand_in, contracts.Rule)
        self.assertNotIsInstance(stand_in, contracts.Gate)

    def test_gate_request_is_frozen(self):
        """Every gate gets the same request: none may change it."""
        request = contracts.GateRequest(
            manager=mock.sentinel.manager, context=mock.sentinel.context,
            instance=mock.sentinel.instance, task_state='pausing',
            rule=None, nova_path=mock.sentinel.nova_path,
            report=mock.sentinel.report)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr,
                          request, 'task_state', None)
