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

"""The operator's controls on the census's crash leftovers.

dry_run and a disabled rule must both give nova's own outcome, row for
row: a dry run for every row, a disabled rule for its states. Under the
overlay that is stock nova's; in patched nova, where the rules replaced
stock's branches, it leaves every row stuck as it was.
"""

from unittest import mock

from nova.compute import manager as compute_manager
from nova.compute import task_states

from nova_recover import overlay
from nova_recover.startup_recovery import controls
from nova_recover.tests import fixtures as recover_fixtures
from nova_recover.tests.functional import end_states
from nova_recover.tests.functional import test_census
from nova_recover.tests import overlay_fixtures


# What the census shows of a row that start-up left as it found it. A
# lost row is not here: the census settles it as the sweep would, after
# start-up, whatever start-up did (CensusBase.census).
LEFT_AS_FOUND = {
    end_states.REACHED: 'STILL-STUCK',
    end_states.QUEUED: 'left-queued',
}


def assert_left_as_found(test, outcomes):
    """Patched nova without recovery: every task state as it was."""
    found = [(row, outcome) for row, outcome in outcomes
             if row.stood in LEFT_AS_FOUND]
    test.assertTrue(found)
    test.assertEqual([(row, LEFT_AS_FOUND[row.stood]) for row, _ in found],
                     found)


class DryRunTestCase(test_census.CensusBase):
    """A dry run is stock nova's start-up plus a report, row for row."""

    def _outcomes(self):
        return [(row, outcome.split(' ', 1)[0])
                for row, outcome in self.census(test_census.all_rows())]

    def test_every_row_ends_as_on_stock_nova(self):
        """Before, a dry run skipped nova's path for every stuck server

        and so left it in a state stock nova never leaves it in (its VIFs
        unplugged, its stop not retried); now each row ends as stock's.
        """
        self.flags(dry_run=True, group='recover')
        if overlay_fixtures.native():
            assert_left_as_found(self, self._outcomes())
            return
        dry_run = self._outcomes()
        self.assertEqual(0, controls.tally(self.compute).candidates)
        with mock.patch.object(
                compute_manager.ComputeManager, '_init_instance',
                recover_fixtures._on_compute_side(overlay.original())):
            stock = self._outcomes()
        self.assertEqual(stock, dry_run)


class DisabledRuleTestCase(test_census.CensusBase):
    """With 'powering' disabled its rows end as on stock nova."""

    STATES = (task_states.POWERING_OFF, task_states.POWERING_ON)

    def _outcomes(self):
        census_rows = [row for state in self.STATES
                       for row in test_census.rows(state)]
        return [(row, outcome.split(' ', 1)[0])
                for row, outcome in self.census(census_rows)]

    def test_disabled_rule_gives_nova_own_outcome(self):
        self.flags(disabled_rules=['powering'], group='recover')
        if overlay_fixtures.native():
            # No stock branch is left for POWERING-*: they stay stuck.
            assert_left_as_found(self, self._outcomes())
            return
        disabled = self._outcomes()
        # Stock nova under the same production shape. Not uninstall() and
        # install(): under ProductionShape's wrapper they leave the
        # overlay inside _init_instance for every later test.
        with mock.patch.object(
                compute_manager.ComputeManager, '_init_instance',
                recover_fixtures._on_compute_side(overlay.original())):
            stock = self._outcomes()
        self.assertEqual(stock, disabled)
        # And not the rule's: stock leaves some of these rows stuck.
        self.flags(disabled_rules=[], group='recover')
        self.assertNotEqual(stock, self._outcomes())
