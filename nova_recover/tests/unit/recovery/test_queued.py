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

import datetime
from unittest import mock

from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova.compute import instance_actions
from nova.compute import manager as compute_manager
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects
from nova import test

from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import read_ahead
from nova_recover.startup_recovery import sweep
from nova_recover.tests import fixtures as sr_fixtures
from nova_recover.tests import overlay_fixtures
from nova_recover.tests.unit.recovery import test_evidence

HOST = 'host1'
GRACE = 600
# The functions start-up recovery runs in threads of their own.
STARTUP_THREADS = ((read_ahead, '_read', True),
                   (sweep, 'sweep_once', False))


class LostRequestTestCase(test.TestCase):
    """Start-up, the sweep and the engine together, as nova-compute runs

    them: a request that never comes is recovered once the grace is over.
    """

    def setUp(self):
        super().setUp()
        self.useFixture(overlay_fixtures.Overlay())
        self.shape = self.useFixture(
            sr_fixtures.ProductionShape(threads=STARTUP_THREADS))
        self.flags(host=HOST)
        self.flags(queued_request_grace=GRACE, sweep_interval=3600,
                   group='recover')
        self.useFixture(test.fixtures.MockPatchObject(
            sweep.threading, 'Thread'))
        self.context = nova_context.get_admin_context()
        self.compute = compute_manager.ComputeManager()
        self.addCleanup(sweep.stop, self.compute)
        self.now = timeutils.utcnow()
        # This host's monotonic clock, in seconds after the request.
        self.clock = 0
        self.useFixture(test.fixtures.MockPatchObject(
            sweep, '_clock', side_effect=lambda: self.clock))

    def _queued(self, task_state, action):
        instance = objects.Instance(
            self.context, uuid=uuidutils.generate_uuid(), host=HOST,
            task_state=task_state,
            vm_state=vm_states.ACTIVE, project_id='p', user_id='u')
        instance.create()
        ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
        with mock.patch.object(timeutils, 'utcnow', return_value=self.now):
            objects.InstanceAction.action_start(
                ctxt, instance.uuid, action, want_result=False)
        return instance

    def _start_up(self, instance):
        """Start-up of the instance, then nova starts the RPC server."""
        self.compute._init_instance(self.context, instance)
        # As Service.start calls it, through the overlay's wrapper.
        self.compute.post_start_hook()

    def _pass(self, after):
        later = self.now + datetime.timedelta(seconds=after)
        self.clock = after
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            return sweep.sweep_once(self.compute, self.context)

    def test_start_up_hands_queued_instances_to_the_sweep(self):
        instance = self._queued(task_states.PAUSING, instance_actions.PAUSE)
        self.compute._init_instance(self.context, instance)
        self.assertEqual({instance.uuid: task_states.PAUSING},
                         sweep.watched(self.compute))
        instance.refresh()
        self.assertEqual(task_states.PAUSING, instance.task_state)

    def _revert_resize_handed_on(self, instance):
        """revert_resize ran here for the request and finished well."""
        ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
        ctxt.request_id = objects.InstanceActionList.get_by_instance_uuid(
            self.context, instance.uuid)[0].request_id
        name = evidence.PREFIX + 'revert_resize'
        objects.InstanceActionEvent.event_start(
            ctxt, instance.uuid, name, want_result=False, host=HOST)
        objects.InstanceActionEvent.event_finish(
            ctxt, instance.uuid, name, want_result=False)

    def test_revert_handed_to_the_source_is_left_to_it(self):
        """The destination finished its revert_resize and cast the rest

        to the source: start-up neither recovers the instance (before, the
        resize rule put it in ERROR, and the source's finish_revert_resize
        then failed its compare-and-swap) nor watches it as a request that
        may be lost.
        """
        instance = self._queued(task_states.RESIZE_REVERTING,
                                instance_actions.REVERT_RESIZE)
        instance.vm_state = vm_states.RESIZED
        instance.save()
        self._revert_resize_handed_on(instance)
        self._start_up(instance)
        self.assertEqual({}, sweep.watched(self.compute))
        instance.refresh()
        self.assertEqual(task_states.RESIZE_REVERTING, instance.task_state)
        # The resize rule would have found no migration and errored it.
        self.assertEqual(vm_states.RESIZED, instance.vm_state)
        self.assertEqual(HOST, instance.host)

    def test_sweep_leaves_a_handed_on_revert_to_its_next_step(self):
        instance = self._queued(task_states.RESIZE_REVERTING,
                                instance_actions.REVERT_RESIZE)
        self._start_up(instance)
        self.assertIn(instance.uuid, sweep.watched(self.compute))
        # The queued revert_resize ran here and handed the rest on.
        self._revert_resize_handed_on(instance)
        self.assertEqual({instance.uuid: sweep.ARRIVED},
                         self._pass(GRACE + 1))
        instance.refresh()
        self.assertEqual(task_states.RESIZE_REVERTING, instance.task_state)

    def test_unreadable_evidence_hands_the_instance_to_the_sweep(self):
        instance = self._queued(task_states.PAUSING, instance_actions.PAUSE)
        with mock.patch.object(
                self.shape.indirection.conductor,
                'object_class_action_versions',
                side_effect=test.TestingException('conductor down')):
            self.compute._init_instance(self.context, instance)
        self.assertIn(instance.uuid, sweep.watched(self.compute))

    def test_nothing_is_lost_before_the_rpc_server_starts(self):
        instance = self._queued(task_states.PAUSING, instance_actions.PAUSE)
        self.compute._init_instance(self.context, instance)
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE * 10))
        self.clock = GRACE * 10
        self.compute.post_start_hook()
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE * 11 - 1))
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE * 11))

    def test_state_without_rule_is_cleared_with_a_cas(self):
        instance = self._queued(task_states.PAUSING, instance_actions.PAUSE)
        self._start_up(instance)
        with mock.patch.object(engine, 'rule_for', return_value=None):
            self.assertEqual({instance.uuid: sweep.RECOVERED},
                             self._pass(GRACE + 1))
        instance.refresh()
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)

    def test_state_without_rule_loses_to_a_request(self):
        instance = self._queued(task_states.PAUSING, instance_actions.PAUSE)
        self._start_up(instance)
        real_get = sweep._get_instance

        def stale(context, uuid):
            copy = real_get(context, uuid)
            # The queued request lands between the read and the save.
            with self.shape.conductor_side():
                fresh = objects.Instance.get_by_uuid(context, uuid)
                fresh.task_state = None
                fresh.vm_state = vm_states.PAUSED
                fresh.save(expected_task_state=task_states.PAUSING)
            return copy

        with test.nested(
                mock.patch.object(engine, 'rule_for', return_value=None),
                mock.patch.object(sweep, '_get_instance',
                                  side_effect=stale)):
            self.assertEqual({instance.uuid: sweep.RECOVERED},
                             self._pass(GRACE + 1))
        instance.refresh()
        self.assertEqual(vm_states.PAUSED, instance.vm_state)

    def test_lost_request_leaves_the_server_as_before_with_a_note(self):
        """A stop that never reached this host is not run by a rule.

        Before, the sweep recovered it as if it had died here. Now the
        server is as it was before the request, and the stop action ends
        in Error with an event that says the request was lost.
        """
        instance = self._queued(task_states.POWERING_OFF,
                                instance_actions.STOP)
        self._start_up(instance)
        with mock.patch.object(self.compute, 'stop_instance') as mock_stop:
            self.assertEqual({instance.uuid: sweep.RECOVERED},
                             self._pass(GRACE + 1))
        mock_stop.assert_not_called()
        # The fake hypervisor has no guest: the vm_state stays.
        instance.refresh()
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual(power_state.NOSTATE, instance.power_state)
        with self.shape.conductor_side():
            action, = objects.InstanceActionList.get_by_instance_uuid(
                self.context, instance.uuid)
            events = objects.InstanceActionEventList.get_by_action(
                self.context, action.id)
        self.assertEqual(instance_actions.STOP, action.action)
        self.assertEqual('Error', action.message)
        event, = events
        self.assertEqual(evidence.LOST_EVENT, event.event)
        self.assertEqual('Error', event.result)
        self.assertEqual(HOST, event.host)
        self.assertIn('never reached nova-compute', event.traceback)


class StartUpEvidenceTestCase(test_evidence.EvidenceBase):
    """The gate reads the evidence as nova-compute start-up runs it."""

    def test_start_up_leaves_queued_request_alone(self):
        self.useFixture(overlay_fixtures.Overlay())
        shape = self.useFixture(
            sr_fixtures.ProductionShape(threads=STARTUP_THREADS))
        self.flags(host=HOST)
        compute = compute_manager.ComputeManager()
        instance = self._instance(task_states.POWERING_OFF)
        self._request(instance, instance_actions.STOP)
        with mock.patch.object(compute, 'stop_instance') as stop:
            compute._init_instance(self.context, instance)
        stop.assert_not_called()
        self.assertNotEqual([], shape.round_trips)
        instance.refresh()
        self.assertEqual(task_states.POWERING_OFF, instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)

    def test_start_up_without_evidence_leaves_the_request_alone(self):
        self.useFixture(overlay_fixtures.Overlay())
        shape = self.useFixture(
            sr_fixtures.ProductionShape(threads=STARTUP_THREADS))
        self.flags(host=HOST)
        compute = compute_manager.ComputeManager()
        instance = self._instance(task_states.POWERING_OFF)
        ctxt = self._request(instance, instance_actions.STOP)
        self._event(ctxt, instance, 'stop_instance')
        with test.nested(
            mock.patch.object(compute, 'stop_instance'),
            mock.patch.object(
                shape.indirection.conductor, 'object_class_action_versions',
                side_effect=test.TestingException('conductor down')),
        ) as (stop, _conductor):
            compute._init_instance(self.context, instance)
        stop.assert_not_called()
        instance.refresh()
        self.assertEqual(task_states.POWERING_OFF, instance.task_state)

    def test_start_up_takes_what_was_read_ahead(self):
        self.useFixture(overlay_fixtures.Overlay())
        shape = self.useFixture(
            sr_fixtures.ProductionShape(threads=STARTUP_THREADS))
        self.flags(host=HOST)
        compute = compute_manager.ComputeManager()
        # A start that died here is run again (by the power rule, or by
        # nova's own path before that rule), a stop still queued is left
        # for its request.
        died = self._instance(task_states.POWERING_ON,
                              vm_state=vm_states.STOPPED)
        self._event(self._request(died, instance_actions.START), died,
                    'start_instance')
        queued = self._instance(task_states.POWERING_OFF)
        self._request(queued, instance_actions.STOP)
        with test.nested(
            mock.patch.object(compute, 'start_instance'),
            mock.patch.object(compute, 'stop_instance'),
        ) as (start, stop):
            for instance in (died, queued):
                compute._init_instance(self.context, instance)
        start.assert_called_once()
        stop.assert_not_called()
        # Start-up itself read no evidence: the readers did.
        reads = ('InstanceActionList.get_by_instance_uuid',
                 'InstanceActionEventList.get_by_action')
        self.assertEqual(
            [True] * 4, [trip.ahead for trip in shape.round_trips
                         if trip.target in reads])
        queued.refresh()
        self.assertEqual(task_states.POWERING_OFF, queued.task_state)


class CostTestCase(test_evidence.EvidenceBase):
    """What reading the evidence costs, in conductor round trips."""
