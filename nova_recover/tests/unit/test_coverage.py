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

"""Every task state of the installed nova has someone answering for it.

The states are read from the installed nova, not from a list kept here,
so installing a nova that adds a task state fails these tests the same
day.
"""

import importlib.util
import itertools
import os

from nova.compute import task_states
from nova.objects import fields
from nova import test

from nova_recover import coverage
from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))

# States whose rule module another change is still adding, with the
# module expected to own them. Each entry must still be unowned (the test
# fails once the module lands, so this list only ever shrinks); the lead
# empties it.
AWAITING = {}


class _Probe(object):
    """Just the two fields that rules' owns() decide on."""

    def __init__(self, task_state, vm_state):
        self.task_state = task_state
        self.vm_state = vm_state


def _load_generator():
    path = os.path.join(ROOT, 'tools', 'gen_coverage_doc.py')
    spec = importlib.util.spec_from_file_location('gen_coverage_doc', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CoverageTestCase(test.NoDBTestCase):

    def test_installed_states_are_read_from_nova(self):
        states = coverage.installed_task_states()
        self.assertEqual(len(states), len(set(states)))
        for state in fields.InstanceTaskState.ALL:
            self.assertIn(state, states)
        for name in dir(task_states):
            value = getattr(task_states, name)
            if name.isupper() and isinstance(value, str):
                self.assertIn(value, states)

    def test_every_task_state_has_an_owner_or_a_reason(self):
        unowned = []
        for state in coverage.installed_task_states():
            if coverage.owner(state) is not None:
                continue
            if state in coverage.LEFT_TO_NOVA:
                continue
            if state in AWAITING:
                continue
            unowned.append(state)
        self.assertEqual([], unowned,
                         'task states with no rule module and no '
                         'LEFT_TO_NOVA entry')

    def test_awaiting_list_is_still_true(self):
        landed = sorted(s for s in AWAITING if coverage.owner(s) is not None)
        self.assertEqual([], landed,
                         'now owned, remove from AWAITING in %s' % __file__)

    def test_left_to_nova_is_not_also_owned(self):
        for state, reason in coverage.LEFT_TO_NOVA.items():
            self.assertIn(state, coverage.installed_task_states())
            self.assertTrue(reason.strip(), state)
            self.assertIsNone(coverage.owner(state),
                              '%s is owned and left to nova' % state)

    def test_every_rule_declares_its_states(self):
        for rule in order.RULES:
            name = coverage.rule_name(rule)
            self.assertIsInstance(getattr(rule, 'STATES', None), frozenset,
                                  '%s has no STATES frozenset' % name)
            for state in rule.STATES:
                self.assertIn(state, coverage.installed_task_states(),
                              '%s declares unknown state %s' % (name, state))

    def _assert_documented(self, claimants, where):
        names = [coverage.rule_name(rule) for rule in claimants]
        for first, other in itertools.combinations(names, 2):
            self.assertIn((first, other), coverage.ORDERED_OVERLAPS,
                          '%s claimed by %s without a documented order'
                          % (where, names))
            self.assertTrue(coverage.ORDERED_OVERLAPS[(first, other)])

    def test_no_state_declared_twice_without_documented_order(self):
        for state in coverage.installed_task_states():
            self._assert_documented(coverage.owners(state), state)

    def test_no_instance_claimed_twice_without_documented_order(self):
        # STATES alone miss a rule that claims by vm_state (build owns
        # every BUILDING instance, a DELETING one included), so ask owns()
        # for every realistic combination.
        for state in coverage.installed_task_states():
            for vm_state in coverage.VM_STATES.get(state, ()):
                probe = _Probe(state, vm_state)
                claimants = [r for r in order.RULES if r.owns(probe)]
                self._assert_documented(claimants, (state, vm_state))

    def test_documented_order_matches_engine(self):
        names = [coverage.rule_name(rule) for rule in order.RULES]
        for first, second in coverage.ORDERED_OVERLAPS:
            self.assertIn(first, names)
            self.assertIn(second, names)
            self.assertLess(names.index(first), names.index(second),
                            '%s must come before %s in order.RULES'
                            % (first, second))

    def test_owner_claims_every_realistic_vm_state(self):
        # A rule that declares a state but whose owns() refuses one of
        # its realistic vm_states leaves that instance to nova unnoticed.
        missed = []
        for state in coverage.installed_task_states():
            rule = coverage.owner(state)
            if rule is None:
                continue
            for vm_state in coverage.VM_STATES.get(state, ()):
                if engine.rule_for(_Probe(state, vm_state)) is None:
                    missed.append((state, vm_state))
        self.assertEqual([], missed)

    def test_every_task_state_has_realistic_vm_states(self):
        # The census test builds its rows from VM_STATES.
        known = set(fields.InstanceState.ALL)
        for state in coverage.installed_task_states():
            self.assertTrue(coverage.VM_STATES.get(state),
                            'no vm_states listed for %s' % state)
            for vm_state in coverage.VM_STATES[state]:
                self.assertIn(vm_state, known)

    def test_api_set_states_are_real(self):
        states = coverage.installed_task_states()
        for state in coverage.API_SET:
            self.assertIn(state, states)
        self.assertEqual('API', coverage.set_by(task_states.DELETING))
        self.assertEqual('this compute',
                         coverage.set_by(task_states.SPAWNING))
        self.assertEqual('never saved',
                         coverage.set_by(task_states.RESIZE_CONFIRMING))

    def test_evidence_checks_only_api_set_states(self):
        # A compute-set state has no queued request to wait for, unless
        # it is saved just before a cast to this host.
        for state in evidence.API_SET:
            self.assertTrue(registry.BY_NAME[state].saved_before_cast,
                            state)
            self.assertNotEqual('this compute', coverage.set_by(state))

    def test_unchecked_api_set_states_are_documented(self):
        unchecked = coverage.API_SET - set(evidence.API_SET)
        self.assertEqual(sorted(unchecked), sorted(coverage.NOT_CHECKED))
        for state in unchecked:
            self.assertEqual('always reached',
                             coverage.evidence_class(state))

    def test_every_owned_state_documents_its_end(self):
        for state in coverage.installed_task_states():
            if coverage.owner(state) is not None:
                self.assertIn(state, coverage.ENDS)

    def test_table_has_one_row_per_state(self):
        rows = coverage.table()
        self.assertEqual(coverage.installed_task_states(),
                         [row.task_state for row in rows])

    def test_registry_owners_are_the_rules_that_declare_the_state(self):
        names = [coverage.rule_name(rule) for rule in order.RULES]
        for state in registry.TASK_STATES:
            self.assertTrue(state.rules, state.name)
            self.assertEqual(
                [coverage.rule_name(rule)
                 for rule in coverage.owners(state.name)],
                [name for name in names if name in state.rules],
                state.name)

    def test_doc_is_up_to_date(self):
        generator = _load_generator()
        with open(generator.DEFAULT) as f:
            current = f.read()
        self.assertEqual(generator.render(), current,
                         'doc/source/coverage.rst is stale: run '
                         'tools/gen_coverage_doc.py')
