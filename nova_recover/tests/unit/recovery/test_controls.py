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

import fixtures
from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import test
from nova.virt import hardware

from nova_recover.startup_recovery import controls
from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery import sweep
from nova_recover.tests.unit import base


class ControlsTestCase(base.InitInstanceTestCase):
    """dry_run, disabled_rules and the start-up summary."""

    def setUp(self):
        super().setUp()
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(state=power_state.RUNNING)))
        self.mock_log = self.useFixture(test.fixtures.MockPatchObject(
            controls, 'LOG')).mock

    def _logged(self):
        return [call[0][0] % call[0][1] if len(call[0]) > 1 else call[0][0]
                for call in self.mock_log.info.call_args_list]

    def _assert_nova_start_up_only(self, instance, task_state):
        """Nova's own start-up ran, and nothing recovered the instance.

        IMAGE_BACKUP (the image_upload rule's) has no branch in stock
        nova's _init_instance, so the end is the same under the overlay
        and in patched nova: VIFs plugged, the task state as it was,
        nothing saved, no rule re-run, the gate for queued requests not
        asked.
        """
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        self.assertEqual(task_state, instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.mock_rerun_action.assert_not_called()
        self.mock_queued.assert_not_called()

    def test_dry_run_is_nova_plus_a_report(self):
        """A dry run is nova's own start-up plus the report.

        Before, it returned ahead of nova's path for every server with a
        task_state, so such a server's VIFs were never plugged, on exactly
        the hosts that need recovery.
        """
        self.flags(dry_run=True, group='recover')
        instance = self._instance(task_states.IMAGE_BACKUP)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_not_called()
        self._assert_nova_start_up_only(instance, task_states.IMAGE_BACKUP)
        line, = self._logged()
        self.assertIn('(dry run): rule image_upload would recover '
                      'task_state image_backup', line)

    def test_dry_run_starts_healthy_instances_as_usual(self):
        self.flags(dry_run=True, group='recover')
        instance = self._instance(None)
        self.compute._init_instance(self.context, instance)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        self.assertEqual([], self._logged())

    def test_disabled_rule_hands_its_states_to_nova(self):
        self.flags(disabled_rules=['image_upload'], group='recover')
        instance = self._instance(task_states.IMAGE_BACKUP)
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_not_called()
        self._assert_nova_start_up_only(instance, task_states.IMAGE_BACKUP)
        line, = self._logged()
        self.assertIn('rule image_upload is disabled', line)

    def test_other_rules_stay_on(self):
        self.flags(disabled_rules=['resize'], group='recover')
        instance = self._instance(task_states.POWERING_OFF)
        with mock.patch.object(self.compute, 'stop_instance') as mock_stop:
            self.compute._init_instance(self.context, instance)
        self.assertRerun(mock_stop, instance, 'stop', clean_shutdown=True)

    def test_unknown_rule_name_is_refused(self):
        self.flags(disabled_rules=['powering', 'pwoering'], group='recover')
        exc = self.assertRaises(controls.UnknownRule, engine.check_options)
        self.assertIn('pwoering', str(exc))
        self.assertIn('powering', str(exc).split('the rules are')[1])

    def test_known_rule_names_pass(self):
        self.flags(disabled_rules=[controls.rule_name(rule)
                                   for rule in order.RULES],
                   group='recover')
        engine.check_options()

    def test_old_rule_name_still_disables_the_rule(self):
        """A rule's name before it was renamed still switches it off.

        Operators may have the old name in nova.conf: refusing it would
        stop nova-compute after an upgrade, and ignoring it would turn
        the rule back on. It is accepted, with a warning.
        """
        self.flags(disabled_rules=['image'], group='recover')
        engine.check_options()
        warning, = self.mock_log.warning.call_args_list
        self.assertEqual({'old': 'image', 'new': 'image_upload'},
                         warning[0][1])
        instance = self._instance(task_states.IMAGE_BACKUP)
        self.compute._init_instance(self.context, instance)
        self._assert_nova_start_up_only(instance, task_states.IMAGE_BACKUP)
        line, = self._logged()
        self.assertIn('rule image_upload is disabled', line)

    def test_summary_counts_each_outcome(self):
        healthy = self._instance(None, uuid=uuids.healthy)
        stopped = self._instance(task_states.POWERING_OFF, uuid=uuids.stop)
        queued = self._instance(task_states.PAUSING, uuid=uuids.queued)
        building = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.BUILDING,
                                  uuid=uuids.building)
        broken = self._instance(task_states.POWERING_ON, uuid=uuids.broken)
        guests = {uuids.stop: power_state.SHUTDOWN}
        self.mock_queued.side_effect = lambda mgr, ctxt, inst, record: (
            inst is queued)
        self.useFixture(fixtures.MockPatchObject(sweep, 'watch'))
        with test.nested(
            mock.patch.object(
                self.compute, '_get_power_state',
                side_effect=lambda inst: guests.get(inst.uuid,
                                                    power_state.RUNNING)),
            mock.patch.object(stopped, 'save'),
            mock.patch.object(building, 'save'),
            mock.patch.object(broken, 'save',
                              side_effect=test.TestingException('db')),
        ):
            for instance in (healthy, stopped, queued, building, broken):
                self.compute._init_instance(self.context, instance)
        self.assertEqual(
            'start-up recovery: 5 instances, 1 recovered, 1 errored, '
            '1 left for queued requests, 0 lost requests, 1 failed',
            controls.tally(self.compute).line())
        lines = self._logged()
        self.assertIn('rule=build task_state=spawning outcome=errored',
                      '\n'.join(lines))
        controls.finished(self.compute)
        self.assertIn('start-up recovery: 5 instances',
                      self._logged()[-1])
        # The next start-up counts afresh.
        self.assertEqual(0, controls.tally(self.compute).instances)
