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
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects
from nova import test

from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import glance_cleanup
from nova_recover.startup_recovery import sweep
from nova_recover.tests import fixtures as sr_fixtures

HOST = 'host1'
GRACE = 600
# Where this host's monotonic clock stands when the tests begin.
BOOT = 1000.0


class FakeEvents(object):
    def __init__(self):
        self._events = {}


class FakeManager(object):
    """What the sweep needs of a ComputeManager."""

    host = HOST

    def __init__(self):
        self.instance_events = FakeEvents()


class SweepBase(test.TestCase):
    """Passes of the sweep, run as nova-compute runs them (no database)."""

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        self.manager = FakeManager()
        self.recovered = []
        self.flags(queued_request_grace=GRACE, sweep_interval=3600,
                   group='recover')
        self.shape = self.useFixture(sr_fixtures.ProductionShape(
            threads=[(sweep, 'sweep_once', False)]))
        # Passes are driven by the tests, not by a background thread.
        self.mock_thread = self.useFixture(test.fixtures.MockPatchObject(
            sweep.threading, 'Thread')).mock
        self.now = timeutils.utcnow()
        # This host's monotonic clock, which only the tests move.
        self.clock = BOOT
        self.useFixture(test.fixtures.MockPatchObject(
            sweep, '_clock', side_effect=lambda: self.clock))

    def _instance(self, task_state, action=instance_actions.PAUSE,
                  event=None):
        instance = objects.Instance(
            self.context, uuid=uuidutils.generate_uuid(), host=HOST,
            task_state=task_state, vm_state=vm_states.ACTIVE,
            project_id='p', user_id='u')
        instance.create()
        if action is not None:
            ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
            with mock.patch.object(timeutils, 'utcnow',
                                   return_value=self.now):
                objects.InstanceAction.action_start(
                    ctxt, instance.uuid, action, want_result=False)
            if event is not None:
                objects.InstanceActionEvent.event_start(
                    ctxt, instance.uuid, 'compute_' + event,
                    want_result=False, host=HOST)
        return instance

    def _recover(self, manager, context, instance):
        self.recovered.append(instance.uuid)

    def _left_alone(self, instance, serving=True):
        """Start-up leaves it; by default nova then serves at once."""
        sweep.watch(self.manager, instance, self._recover)
        if serving:
            sweep.serving(self.manager)

    def _pass(self, after):
        """A pass after seconds, on the wall clock and the monotonic."""
        later = self.now + datetime.timedelta(seconds=after)
        self.clock = BOOT + after
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            return sweep.sweep_once(self.manager, self.context)

    def _serving_at(self, after):
        self.clock = BOOT + after
        sweep.serving(self.manager)

    def _too_far_back(self, instance):
        for _ in range(evidence.MAX_ACTIONS):
            objects.InstanceAction.action_start(
                nova_context.RequestContext('u', 'p', is_admin=True),
                instance.uuid, instance_actions.ATTACH_INTERFACE,
                want_result=False)


class SweepTestCase(SweepBase):
    """What one pass of the sweep does with a watched instance."""

    def test_watch_starts_the_thread(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        self.assertEqual({instance.uuid: task_states.PAUSING},
                         sweep.watched(self.manager))
        self.mock_thread.assert_called_once()
        self.assertTrue(self.mock_thread.call_args[1]['daemon'])

    def test_waits_for_the_grace(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE - 1))
        self.assertEqual([], self.recovered)
        self.assertIn(instance.uuid, sweep.watched(self.manager))

    def test_recovers_after_the_grace(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE + 1))
        self.assertEqual([instance.uuid], self.recovered)
        self.assertEqual({}, sweep.watched(self.manager))
        # Once only: the instance is no longer watched.
        self.assertEqual({}, self._pass(GRACE + 2))
        self.assertEqual(1, len(self.recovered))

    def test_lost_snapshot_loses_its_empty_image_first(self):
        instance = self._instance(task_states.IMAGE_SNAPSHOT_PENDING,
                                  action=instance_actions.CREATE_IMAGE)
        seen = []
        self.useFixture(test.fixtures.MockPatchObject(
            glance_cleanup, 'delete_unfinished_images',
            side_effect=lambda m, c, i: seen.append(
                ('images', self.recovered[:]))))
        self._left_alone(instance)
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE + 1))
        # Deleted while the task state still kept new requests off.
        self.assertEqual([('images', [])], seen)
        self.assertEqual([instance.uuid], self.recovered)

    def test_lost_pause_touches_no_image(self):
        instance = self._instance(task_states.PAUSING)
        self.useFixture(test.fixtures.MockPatchObject(
            glance_cleanup, 'delete_unfinished_images'))
        self._left_alone(instance)
        self._pass(GRACE + 1)
        glance_cleanup.delete_unfinished_images.assert_not_called()
        self.assertEqual([instance.uuid], self.recovered)

    def test_request_that_arrived_is_left_to_the_service(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        objects.InstanceActionEvent.event_start(
            nova_context.get_admin_context(), instance.uuid,
            'compute_pause_instance',
            want_result=False, host=HOST)
        self.assertEqual({instance.uuid: sweep.ARRIVED},
                         self._pass(GRACE + 1))
        self.assertEqual([], self.recovered)

    def test_instance_that_moved_on_is_dropped(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        instance.task_state = None
        instance.vm_state = vm_states.PAUSED
        instance.save()
        self.assertEqual({instance.uuid: sweep.SETTLED},
                         self._pass(GRACE + 1))
        self.assertEqual([], self.recovered)

    def test_deleted_instance_is_dropped(self):
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        instance.destroy()
        self.assertEqual({instance.uuid: sweep.SETTLED},
                         self._pass(GRACE + 1))

    def test_no_action_is_dated_by_the_instance(self):
        # The API died before recording the request: no cast was made.
        with mock.patch.object(timeutils, 'utcnow', return_value=self.now):
            instance = self._instance(task_states.POWERING_OFF, action=None)
        self._left_alone(instance)
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE - 1))
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE + 1))

    def test_unreadable_evidence_keeps_waiting(self):
        """Unknown is never "started", however old the request."""
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        with mock.patch.object(
                self.shape.indirection.conductor,
                'object_class_action_versions',
                side_effect=test.TestingException('conductor down')):
            self.assertEqual({instance.uuid: sweep.WAITING},
                             self._pass(GRACE * 10))
        self.assertEqual([], self.recovered)
        self.assertIn(instance.uuid, sweep.watched(self.manager))
        # Once the conductor answers again, the pass goes on.
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE * 10))

    def test_round_trips_per_waiting_instance(self):
        instances = [self._instance(task_states.PAUSING) for _ in range(4)]
        for instance in instances:
            self._left_alone(instance)
        del self.shape.round_trips[:]
        self._pass(GRACE - 1)
        # The instance, its actions and the events of the request's.
        self.assertEqual(3 * len(instances), len(self.shape.round_trips))

    def test_too_far_back_ages_out_with_a_warning(self):
        """Unreadable for good: after the grace it is waited for no more."""
        instance = self._instance(task_states.PAUSING)
        self._too_far_back(instance)
        self._left_alone(instance, serving=False)
        self._serving_at(10)
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE + 9))
        self.assertEqual([], self.recovered)
        self.assertNotIn('too far back', self.stdlog.logger.output)
        self.assertEqual({instance.uuid: sweep.RECOVERED},
                         self._pass(GRACE + 10))
        self.assertEqual([instance.uuid], self.recovered)
        self.assertIn('WARNING [%s] The pause request lies too far back'
                      % sweep.__name__, self.stdlog.logger.output)
        self.assertEqual({}, sweep.watched(self.manager))

    def test_too_far_back_waits_for_the_queue_to_be_read(self):
        instance = self._instance(task_states.PAUSING)
        self._too_far_back(instance)
        self._left_alone(instance, serving=False)
        self.assertEqual({instance.uuid: sweep.WAITING},
                         self._pass(GRACE * 10))
        self.assertEqual([], self.recovered)

    def test_beyond_the_read_limit_ages_out(self):
        """Not even the request's action was read: served time alone."""
        instance = self._instance(task_states.PAUSING)
        for _ in range(3):
            objects.InstanceAction.action_start(
                nova_context.RequestContext('u', 'p', is_admin=True),
                instance.uuid, instance_actions.LOCK, want_result=False)
        self._left_alone(instance, serving=False)
        self._serving_at(0)
        with mock.patch.object(evidence, 'READ_LIMIT', 3):
            self.assertEqual({instance.uuid: sweep.WAITING},
                             self._pass(GRACE - 1))
            self.assertEqual({instance.uuid: sweep.RECOVERED},
                             self._pass(GRACE))
        self.assertEqual([instance.uuid], self.recovered)

    def test_stopped_service_ends_the_sweep(self):
        self.assertFalse(sweep.stopped(self.manager))
        self.manager.instance_events._events = None
        self.assertTrue(sweep.stopped(self.manager))
        instance = self._instance(task_states.PAUSING)
        self._left_alone(instance)
        self.assertEqual({}, self._pass(GRACE + 1))
        self.assertEqual([], self.recovered)
