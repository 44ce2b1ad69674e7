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

from nova import test

from nova_recover.startup_recovery import state as recovery_state


class _BareManager(object):
    """A compute manager as start-up finds it: nothing of recovery yet."""


class StartupStateRecoveryTestCase(test.NoDBTestCase):
    """Start-up recovery keeps one object on the manager, made on use."""

    def test_made_on_first_use_then_kept(self):
        manager = _BareManager()
        recovery = recovery_state.of(manager)
        self.assertIsInstance(recovery, recovery_state.StartupRecovery)
        self.assertIs(recovery, recovery_state.of(manager))
        # The one attribute start-up recovery sets on nova's manager.
        self.assertEqual([recovery_state.ATTRIBUTE], list(vars(manager)))

    def test_each_manager_has_its_own(self):
        first, second = _BareManager(), _BareManager()
        recovery_state.of(first).failures.append(ValueError('first'))
        self.assertEqual([], recovery_state.of(second).failures)

    def test_starts_empty(self):
        recovery = recovery_state.of(_BareManager())
        self.assertEqual([], recovery.failures)
        self.assertEqual({}, recovery.notes)
        self.assertEqual({}, recovery.evidence)
        # None until their owners make them: the tally at the first
        # instance, the read-ahead once per start-up, the sweep on use.
        self.assertIsNone(recovery.tally)
        self.assertIsNone(recovery.read_ahead)
        self.assertIsNone(recovery.sweep)
