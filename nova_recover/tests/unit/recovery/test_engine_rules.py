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

"""Test start-up recovery over its first rules together.

test_engine.py proves the engine with stand-in rules, in the patch that
brings the engine. These tests need the rules that nova runs (build,
deleting, image upload, snapshot, reboot, powering) and the gate for
queued requests: which rule owns an instance when two could, and what
the gate does with the instances it holds, lost requests included. They
come once those rules are in.
"""

from unittest import mock

import ddt

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova.objects import fields
from nova import test
from nova.virt import hardware

from nova_recover.startup_recovery import contracts
from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import lost_request
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery.rules import build
from nova_recover.startup_recovery.rules import deleting
from nova_recover.startup_recovery.rules import image_upload
from nova_recover.startup_recovery.rules import powering
from nova_recover.startup_recovery.rules import reboot
from nova_recover.startup_recovery.rules import snapshot
from nova_recover.startup_recovery import sweep
from nova_recover.tests.unit.recovery import test_engine


@ddt.ddt
class EngineRulesTestCase(test_engine.EngineBase):
    """The engine with the rules and the gate that nova runs.

    Which rule owns an instance, and what the gate for queued requests
    does to the instances it holds, lost requests included.
    """

    def setUp(self):
        super().setUp()
        # The sweep's own behaviour is test_sweep's.
        self.mock_watch = self.useFixture(test.fixtures.MockPatchObject(
            sweep, 'watch')).mock

    # Rule selection

    def test_deleting_comes_before_build(self):
        self.assertEqual(deleting, order.RULES[0])
        self.assertLess(order.RULES.index(deleting),
                        order.RULES.index(build))

    @ddt.data(
        (task_states.DELETING, vm_states.BUILDING, deleting),
        (task_states.DELETING, vm_states.ERROR, deleting),
        (None, vm_states.DELETED, deleting),
        (task_states.SPAWNING, vm_states.BUILDING, build),
        (None, vm_states.BUILDING, build),
        (task_states.IMAGE_UPLOADING, vm_states.ACTIVE, image_upload),
        (task_states.IMAGE_SNAPSHOT, vm_states.ACTIVE, snapshot),
        (task_states.REBOOTING_HARD, vm_states.ERROR, reboot),
        (task_states.POWERING_OFF, vm_states.RESCUED, powering),
        (None, vm_states.ACTIVE, None),
        (None, vm_states.STOPPED, None),
    )
    @ddt.unpack
    def test_rule_for(self, task_state, vm_state, rule):
        instance = self._instance(task_state, vm_state=vm_state)
        self.assertIs(rule, engine.rule_for(instance))

    def test_rule_for_index_agrees_with_every_rule(self):
        """The index may skip rules only where they would refuse."""
        for task_state in [None] + list(fields.InstanceTaskState.ALL):
            for vm_state in fields.InstanceState.ALL:
                instance = self._instance(task_state, vm_state=vm_state)
                owners = [rule for rule in order.RULES
                          if rule.owns(instance)]
                self.assertIs(owners[0] if owners else None,
                              engine.rule_for(instance),
                              (task_state, vm_state))

    # Evidence of a queued request

    def test_queued_leaves_instance_untouched(self):
        rule = self._use_rule()
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with test.nested(
            mock.patch.object(evidence, 'queued',
                              new=mock.Mock(return_value=True)),
            mock.patch.object(instance, 'save'),
        ) as (mock_queued, mock_save):
            self.compute._init_instance(self.context, instance)
        # Nothing read ahead without a database: the gate reads it now.
        mock_queued.assert_called_once_with(self.compute, self.context,
                                            instance, None)
        rule.recover.assert_not_called()
        mock_save.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()
        self.assertEqual(task_states.POWERING_ON, instance.task_state)

    def test_queued_leaves_real_rule_unrun(self):
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with test.nested(
            mock.patch.object(evidence, 'queued',
                              new=mock.Mock(return_value=True)),
            mock.patch.object(self.compute, 'start_instance'),
            mock.patch.object(instance, 'save'),
        ) as (_queued, mock_start, mock_save):
            self.compute._init_instance(self.context, instance)
        mock_start.assert_not_called()
        mock_save.assert_not_called()

    def test_not_queued_runs_the_rule(self):
        rule = self._use_rule()
        instance = self._instance(task_states.POWERING_ON)
        with mock.patch.object(evidence, 'queued',
                               new=mock.Mock(return_value=False)):
            self.compute._init_instance(self.context, instance)
        rule.recover.assert_called_once_with(self.compute, self.context,
                                             instance)

    def test_queued_raising_leaves_the_instance_for_the_sweep(self):
        """Unknown is never "started": without evidence, wait for it."""
        rule = self._use_rule()
        instance = self._instance(task_states.POWERING_ON)
        with test.nested(
            mock.patch.object(
                evidence, 'queued', new=mock.Mock(
                    side_effect=test.TestingException('no evidence'))),
            mock.patch.object(instance, 'save'),
        ) as (_queued, mock_save):
            self.compute._init_instance(self.context, instance)
        rule.recover.assert_not_called()
        mock_save.assert_not_called()
        self.mock_watch.assert_called_once_with(self.compute, instance,
                                                mock.ANY)
        self.mock_fault.assert_not_called()

    def test_queued_hands_the_instance_to_the_sweep(self):
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.STOPPED)
        with mock.patch.object(evidence, 'queued',
                               new=mock.Mock(return_value=True)):
            self.compute._init_instance(self.context, instance)
        self.mock_watch.assert_called_once_with(self.compute, instance,
                                                mock.ANY)
        # What the sweep calls once the request is taken as lost.
        recover = self.mock_watch.call_args[0][2]
        self.assertIs(lost_request.recover_lost, recover.func)

    def _held(self, instance):
        """The request the gate held the instance back with."""
        return contracts.GateRequest(
            manager=self.compute, context=self.context, instance=instance,
            task_state=instance.task_state, rule=None,
            nova_path=engine.nova_path_for(self.compute,
                                           self.compute._init_instance),
            report=engine.recovered)

    def _lose(self, task_state, vm_state, power, **kwargs):
        """The sweep found the request lost: recover_lost, as it calls it."""
        self.compute.driver.get_info.return_value = hardware.InstanceInfo(
            state=power)
        instance = self._instance(task_state, vm_state=vm_state,
                                  power=power_state.RUNNING, **kwargs)
        with test.nested(
            mock.patch.object(instance, 'save'),
            mock.patch.object(self.compute, 'rebuild_instance'),
            mock.patch.object(self.compute, 'stop_instance'),
            mock.patch.object(self.compute, 'finish_revert_migration',
                              create=True),
        ) as (mock_save, mock_rebuild, mock_stop, mock_revert):
            lost_request.recover_lost(self.compute, self.context, instance,
                                      self._held(instance))
        mock_rebuild.assert_not_called()
        mock_stop.assert_not_called()
        mock_revert.assert_not_called()
        self.mock_fault.assert_not_called()
        self.mock_note_lost.assert_called_once_with(
            self.compute, self.context, instance, task_state)
        return instance, mock_save

    @ddt.data(
        # A rebuild that never ran ended in ERROR "rebuild interrupted"
        # on a guest that nothing touched.
        (task_states.REBUILDING, vm_states.ACTIVE, power_state.RUNNING,
         vm_states.ACTIVE),
        (task_states.REBUILDING, vm_states.STOPPED, power_state.SHUTDOWN,
         vm_states.STOPPED),
        # A lost stop: the guest still runs, so the server is ACTIVE.
        (task_states.POWERING_OFF, vm_states.ACTIVE, power_state.RUNNING,
         vm_states.ACTIVE),
        # The guest is paused (a pause that a lost request's twin did):
        # the server says PAUSED, not ACTIVE over a paused guest.
        (task_states.PAUSING, vm_states.ACTIVE, power_state.PAUSED,
         vm_states.PAUSED),
        # libvirt shows a suspended guest as shut off.
        (task_states.RESUMING, vm_states.SUSPENDED, power_state.SHUTDOWN,
         vm_states.SUSPENDED),
        # A revert that never ran: the resize stays to be confirmed or
        # reverted, where before it ended in ERROR.
        (task_states.RESIZE_REVERTING, vm_states.RESIZED,
         power_state.RUNNING, vm_states.RESIZED),
        # The unshelve of a shelved (not offloaded) server is a start.
        (task_states.POWERING_ON, vm_states.SHELVED, power_state.SHUTDOWN,
         vm_states.SHELVED),
    )
    @ddt.unpack
    def test_lost_request_leaves_the_server_as_before(
            self, task_state, vm_state, power, end_vm_state):
        """A request that never ran here leaves no trace but a note."""
        instance, mock_save = self._lose(task_state, vm_state, power)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertEqual(end_vm_state, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(power, instance.power_state)
        # What start-up skipped for the held instance runs now.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_lost_request_loses_a_race_to_a_newer_request(self):
        self.compute.driver.get_info.return_value = hardware.InstanceInfo(
            state=power_state.RUNNING)
        instance = self._instance(task_states.REBUILDING)
        newer = exception.UnexpectedTaskStateError(
            instance_uuid=instance.uuid, expected='rebuilding',
            actual='deleting')
        with mock.patch.object(instance, 'save', side_effect=newer):
            lost_request.recover_lost(self.compute, self.context, instance,
                                      self._held(instance))
        self.mock_plug.assert_not_called()
        self.mock_note_lost.assert_not_called()
        self.mock_fault.assert_not_called()
