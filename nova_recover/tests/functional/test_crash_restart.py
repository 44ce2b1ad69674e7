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

"""Crash nova-compute in every scenario of scenarios.SCENARIOS.

One test per row and mode. With nova-recover the server must end as the
row documents, every field of it (scenarios.ROW_FIELDS: states, host,
flavor, guest, images, the request's events, every action and the
fault); a row with a known problem states the end its owner needs and
is expected to fail. On stock nova the end measured when the row was written
must still hold; where it is not what nova-recover gives, the test says
so in a 'stdout' detail starting with 'STOCK DIFFERS:', which
``stestr run`` prints for passing tests too.
"""

import json

from oslo_log import log as logging
import testtools
from testtools import content

from nova_recover.tests.functional import base
from nova_recover.tests.functional import scenarios
from nova_recover.tests import overlay_fixtures

LOG = logging.getLogger(__name__)


class ScenarioRowsTestCase(testtools.TestCase):
    """The rows themselves: exact checks need complete rows."""

    def test_every_row_states_every_field(self):
        for scenario in scenarios.SCENARIOS:
            for which in ('end', 'stock'):
                self.assertEqual(
                    sorted(scenarios.ROW_FIELDS),
                    sorted(getattr(scenario, which)),
                    '%s.%s' % (scenario.name, which))

    def test_an_unstated_field_is_a_difference(self):
        scenario = scenarios.by_name('stop')
        partial = dict(scenario.end)
        del partial['guest']
        self.assertEqual({'guest': (scenarios.UNSTATED, 'shutdown')},
                         scenario.differences(scenario.end, partial))


class _ScenarioTestCase(base.CrashRestartTestCase):

    def check(self, scenario):
        """Run the scenario; return its row and its differences from
        the end expected in this mode.
        """
        at_crash, row = self.run_scenario(scenario)
        self.addDetail('outcome', content.text_content(
            json.dumps(dict(row, at_crash=at_crash), indent=1,
                       sort_keys=True)))
        self.assertEqual(scenario.at_crash, at_crash,
                         'nova-compute did not die in the state the '
                         'scenario is about')
        return row

    def assertEnds(self, scenario, row, expected, what):
        differences = scenario.differences(row, expected)
        self.assertEqual({}, differences,
                         '%s: {field: (expected, actual)}' % what)


def _add_tests(cls):
    """One test method per scenario, named after it."""
    for scenario in scenarios.SCENARIOS:
        name = 'test_%s' % scenario.name
        if name in vars(cls):
            continue

        def test(self, scenario=scenario):
            self.check_scenario(scenario)

        test.__name__ = name
        test.__doc__ = '%s: crash in %s at %s' % (
            scenario.module, scenario.crash_in, scenario.at_crash)
        setattr(cls, name, test)
    return cls


@_add_tests
class CrashRestartTestCase(_ScenarioTestCase):
    """With nova-recover every server ends as its row documents."""

    RECOVER = True

    def check_scenario(self, scenario):
        row = self.check(scenario)
        if scenario.known_problem:
            # The row states the end the owner needs; until nova-recover
            # gives it, this fails as expected, and passing fails.
            self.expectFailure(
                '%s: %s' % (scenario.name, scenario.known_problem),
                self.assertEnds, scenario, row, scenario.end,
                'nova-recover end')
            return
        self.assertEnds(scenario, row, scenario.end, 'nova-recover end')


@_add_tests
class StockCrashRestartTestCase(_ScenarioTestCase):
    """Stock nova ends as recorded, and the tests show where it differs."""

    RECOVER = False

    def setUp(self):
        if overlay_fixtures.native():
            self.skipTest('the nova under test carries nova-recover; '
                          'there is no stock to measure')
        super().setUp()

    def check_scenario(self, scenario):
        row = self.check(scenario)
        differences = scenario.differences(row, scenario.end)
        if differences:
            text = 'STOCK DIFFERS: %s (%s, crash in %s at %s): %s' % (
                scenario.name, scenario.module, scenario.crash_in,
                scenario.at_crash, ', '.join(
                    '%s stock=%r nova-recover=%r' % (key, actual, ours)
                    for key, (ours, actual) in differences.items()))
        else:
            text = 'STOCK SAME: %s ends as with nova-recover' % scenario.name
        LOG.warning(text)
        self.addDetail('stdout', content.text_content(text + '\n'))
        self.assertEnds(scenario, row, scenario.stock, 'recorded stock end')
