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

from oslo_utils import uuidutils

from nova.compute import instance_actions
from nova.compute import manager as compute_manager
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova.db.main import api as db_api
from nova import exception
from nova import objects
from nova import test

from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import registry
from nova_recover.startup_recovery import state as recovery_state
from nova_recover.tests import fixtures as sr_fixtures
from nova_recover.tests import overlay_fixtures

HOST = 'host1'
# Saved by the source nova-compute just before it casts to the
# destination, which instance.host already names.
# An action that a compute manager method runs for, so its events are
# read and it counts toward MAX_ACTIONS (unlike lock and unlock).
COMPUTE_ACTION = instance_actions.ATTACH_INTERFACE


class FakeManager(object):
    host = HOST


class EvidenceBase(test.TestCase):
    """The evidence, read as nova-compute reads it: through nova-conductor

    from a real (sqlite) nova database, with no database access of its
    own.
    """

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        self.manager = FakeManager()
        self.shape = self.useFixture(sr_fixtures.ProductionShape())

    def _instance(self, task_state, vm_state=vm_states.ACTIVE, host=HOST):
        instance = objects.Instance(
            self.context, uuid=uuidutils.generate_uuid(), host=host,
            task_state=task_state, vm_state=vm_state, project_id='p',
            user_id='u')
        instance.create()
        return instance

    def _request(self, instance, action):
        """An API request: its own context and request id."""
        ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
        objects.InstanceAction.action_start(ctxt, instance.uuid, action,
                                            want_result=False)
        return ctxt

    def _event(self, ctxt, instance, method, host=HOST, finish=False):
        name = evidence.PREFIX + method
        objects.InstanceActionEvent.event_start(
            ctxt, instance.uuid, name, want_result=False, host=host)
        if finish:
            objects.InstanceActionEvent.event_finish(
                ctxt, instance.uuid, name, want_result=False)

    def _events(self, instance):
        action_list = objects.InstanceActionList.get_by_instance_uuid(
            self.context, instance.uuid)
        events = []
        for action in action_list:
            events.extend(objects.InstanceActionEventList.get_by_action(
                self.context, action.id))
        return sorted(events, key=lambda e: e.id)

    def queued(self, instance, manager=None):
        """evidence.queued as nova-compute start-up calls it."""
        with self.shape.compute_side():
            return evidence.queued(manager or self.manager, self.context,
                                   instance)

    def close(self, instance, task_state):
        with self.shape.compute_side():
            return evidence.close_interrupted(self.manager, self.context,
                                              instance, task_state)


class EvidenceTestCase(EvidenceBase):
    """What the evidence proves, and what reading it costs."""

    # --- the fixture is nova-compute's shape ---------------------------

    def test_direct_database_access_is_refused(self):
        instance = self._instance(task_states.PAUSING)
        with self.shape.compute_side():
            self.assertRaises(exception.DBNotAllowed,
                              db_api.instance_get_by_uuid, self.context,
                              instance.uuid)
            # The same read through nova-conductor works.
            objects.Instance.get_by_uuid(self.context, instance.uuid)
        self.assertEqual(['object_class_action_versions'],
                         [trip.method for trip in self.shape.round_trips])

    def test_module_reads_no_database(self):
        """Nothing of nova.db is reachable from the recovery package."""
        self.assertFalse(hasattr(evidence, 'db_api'))
        self.assertFalse(hasattr(evidence, 'models'))

    # --- decisions ---------------------------------------------------

    def test_request_without_compute_event_is_queued(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        self.assertTrue(self.queued(instance))

    def test_compute_event_on_this_host_means_reached(self):
        instance = self._instance(task_states.PAUSING)
        ctxt = self._request(instance, instance_actions.PAUSE)
        self._event(ctxt, instance, 'pause_instance')
        self.assertFalse(self.queued(instance))

    def test_no_action_is_never_started(self):
        # The API died between setting the state and recording the request.
        instance = self._instance(task_states.POWERING_OFF)
        self.assertTrue(self.queued(instance))

    def test_event_on_another_host_does_not_count(self):
        # An evacuation rebuilds on the destination.
        instance = self._instance(task_states.REBUILDING)
        ctxt = self._request(instance, instance_actions.EVACUATE)
        self._event(ctxt, instance, 'rebuild_instance', host='host2')
        self.assertTrue(self.queued(instance))

    def test_event_of_an_older_request_does_not_count(self):
        instance = self._instance(task_states.REBOOTING)
        old = self._request(instance, instance_actions.REBOOT)
        self._event(old, instance, 'reboot_instance', finish=True)
        self._request(instance, instance_actions.REBOOT)
        self.assertTrue(self.queued(instance))

    def test_event_of_another_operation_does_not_count(self):
        instance = self._instance(task_states.PAUSING)
        ctxt = self._request(instance, instance_actions.PAUSE)
        self._event(ctxt, instance, 'stop_instance')
        self.assertTrue(self.queued(instance))

    def test_finished_event_counts(self):
        # snapshot_instance finishes its event once the upload thread runs.
        instance = self._instance(task_states.IMAGE_SNAPSHOT_PENDING)
        ctxt = self._request(instance, instance_actions.CREATE_IMAGE)
        self._event(ctxt, instance, 'snapshot_instance', finish=True)
        self.assertFalse(self.queued(instance))

    def test_recovery_rerun_on_a_later_action_counts(self):
        # A re-run with an admin context attaches its event to the last
        # action, here one recorded after the stop.
        instance = self._instance(task_states.POWERING_OFF)
        self._request(instance, instance_actions.STOP)
        self._request(instance, COMPUTE_ACTION)
        self._event(nova_context.get_admin_context(), instance,
                    'stop_instance')
        self.assertFalse(self.queued(instance))

    def test_recovery_rerun_on_a_lock_is_not_read(self):
        """The events of API-only actions are not read (API_ONLY).

        A stock re-run (the rules' own re-runs record an action of their
        own) that attached its event to a lock goes unseen: the request
        reads as queued, never as started, and the sweep recovers it once
        the service has served for the grace.
        """
        instance = self._instance(task_states.POWERING_OFF)
        self._request(instance, instance_actions.STOP)
        self._request(instance, instance_actions.LOCK)
        self._event(nova_context.get_admin_context(), instance,
                    'stop_instance')
        self.assertTrue(self.queued(instance))

    def test_volume_backed_shelve_goes_to_shelve_offload(self):
        instance = self._instance(task_states.SHELVING)
        ctxt = self._request(instance, instance_actions.SHELVE)
        self._event(ctxt, instance, 'shelve_offload_instance')
        self.assertFalse(self.queued(instance))

    def test_resize_to_another_host_reached_at_source_step(self):
        instance = self._instance(task_states.RESIZE_PREP)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', host='host2',
                    finish=True)
        self.assertTrue(self.queued(instance))
        self._event(ctxt, instance, 'resize_instance')
        self.assertFalse(self.queued(instance, FakeManager()))

    def test_resize_migrated_waits_for_finish_resize_here(self):
        # The source saved RESIZE_MIGRATED and cast finish_resize to us.
        instance = self._instance(task_states.RESIZE_MIGRATED)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', finish=True)
        self._event(ctxt, instance, 'resize_instance', host='host0',
                    finish=True)
        self.assertTrue(self.queued(instance))
        self._event(ctxt, instance, 'finish_resize')
        self.assertFalse(self.queued(instance, FakeManager()))

    def test_stop_of_a_revert_resize_is_reached(self):
        # finish_revert_resize of a stopped server stops it itself.
        instance = self._instance(task_states.POWERING_OFF,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        self._event(ctxt, instance, 'revert_resize', host='host2',
                    finish=True)
        self._event(ctxt, instance, 'finish_revert_resize')
        self.assertFalse(self.queued(instance))

    def test_revert_handed_to_the_source_is_not_a_death(self):
        """The destination's revert_resize finished: it cast the rest to

        the source, and instance.host stays the destination until the
        source saves. Before, that event read as a revert that died here.
        """
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        self._event(ctxt, instance, 'revert_resize', finish=True)
        self.assertTrue(self.queued(instance))
        with self.shape.compute_side():
            self.assertTrue(evidence.handed_on_here(self.manager, instance))

    def test_revert_that_died_here_is_reached(self):
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        self._event(ctxt, instance, 'revert_resize')
        self.assertFalse(self.queued(instance))
        self.assertFalse(evidence.handed_on_here(self.manager, instance))

    def test_same_host_resize_waits_for_its_source_step(self):
        """prep_resize finished and resize_instance is still queued here."""
        instance = self._instance(task_states.RESIZE_PREP)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', finish=True)
        self.assertTrue(self.queued(instance))
        self.assertTrue(evidence.handed_on_here(self.manager, instance))
        # Once the source step started here, it is one that died.
        self._event(ctxt, instance, 'resize_instance')
        self.assertFalse(self.queued(instance))
        self.assertFalse(evidence.handed_on_here(self.manager, instance))

    def test_failed_hand_off_is_not_handed_on(self):
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        name = evidence.PREFIX + 'revert_resize'
        objects.InstanceActionEvent.event_start(
            ctxt, instance.uuid, name, want_result=False, host=HOST)
        objects.InstanceActionEvent.event_finish_with_failure(
            ctxt, instance.uuid, name, exc_val='boom', exc_tb='tb',
            want_result=False)
        self.assertFalse(self.queued(instance))

    def test_start_of_an_unshelve(self):
        # The conductor unshelves a SHELVED server with a start cast.
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.SHELVED)
        ctxt = self._request(instance, instance_actions.UNSHELVE)
        self.assertTrue(self.queued(instance))
        self._event(ctxt, instance, 'start_instance')
        self.assertFalse(self.queued(instance, FakeManager()))

    def test_conductor_failure_is_unreadable(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        with mock.patch.object(
                self.shape.indirection.conductor,
                'object_class_action_versions',
                side_effect=test.TestingException('conductor down')):
            self.assertRaises(evidence.Unreadable, self.queued, instance)

    def test_request_too_far_back_is_unreadable(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(evidence.MAX_ACTIONS):
            self._request(instance, COMPUTE_ACTION)
        del self.shape.round_trips[:]
        ex = self.assertRaises(evidence.TooFarBack, self.queued, instance)
        self.assertIsInstance(ex, evidence.Unreadable)
        # Dated, for the sweep; told from the actions alone.
        self.assertIsNotNone(ex.requested)
        self.assertEqual(['InstanceActionList.get_by_instance_uuid'],
                         [trip.target for trip in self.shape.round_trips])

    def test_died_request_then_locks_and_unlocks_is_readable(self):
        """lock and unlock run in the API: no compute event to read, and

        no reason to give up on the request below them.
        """
        instance = self._instance(task_states.POWERING_OFF)
        ctxt = self._request(instance, instance_actions.STOP)
        self._event(ctxt, instance, 'stop_instance')
        for _ in range(evidence.MAX_ACTIONS + 1):
            self._request(instance, instance_actions.LOCK)
            self._request(instance, instance_actions.UNLOCK)
        del self.shape.round_trips[:]
        self.assertFalse(self.queued(instance))
        # The actions, then the events of the request's own action only.
        self.assertEqual(
            ['InstanceActionList.get_by_instance_uuid',
             'InstanceActionEventList.get_by_action'],
            [trip.target for trip in self.shape.round_trips])

    def test_queued_request_then_locks_is_queued(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(evidence.MAX_ACTIONS + 1):
            self._request(instance, instance_actions.LOCK)
        self.assertTrue(self.queued(instance))

    def test_api_only_actions_are_recorded_by_the_api_alone(self):
        """What API_ONLY names never reaches a compute manager method."""
        self.assertEqual(
            {instance_actions.LOCK, instance_actions.UNLOCK,
             instance_actions.RESET_STATE}, set(evidence.API_ONLY))
        for action in evidence.API_ONLY:
            self.assertNotIn(action, {name for operation in
                                      evidence.API_SET.values()
                                      for name in operation.actions})

    def test_actions_are_read_with_a_limit(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        with mock.patch.object(
                objects.InstanceActionList, 'get_by_instance_uuid',
                wraps=objects.InstanceActionList.get_by_instance_uuid
        ) as get:
            self.assertTrue(self.queued(instance))
        # Asked by nova-compute, then served by nova-conductor.
        self.assertNotEqual([], get.call_args_list)
        for call in get.call_args_list:
            self.assertEqual(instance.uuid, call[0][1])
            self.assertEqual(evidence.READ_LIMIT, call[1].get('limit'))

    def test_request_beyond_the_limit_is_too_far_back(self):
        """A full list without the request is not "no action"."""
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(3):
            self._request(instance, instance_actions.LOCK)
        with mock.patch.object(evidence, 'READ_LIMIT', 3):
            ex = self.assertRaises(evidence.TooFarBack, self.queued,
                                   instance)
            self.assertIsNone(ex.requested)
            # One action fewer and the request is among those read.
            with mock.patch.object(evidence, 'READ_LIMIT', 4):
                self.assertTrue(self.queued(instance))

    def test_short_list_without_the_request_has_no_action(self):
        instance = self._instance(task_states.PAUSING)
        for _ in range(3):
            self._request(instance, instance_actions.LOCK)
        with mock.patch.object(evidence, 'READ_LIMIT', 4):
            self.assertTrue(self.queued(instance))

    # --- cost --------------------------------------------------------

    def test_no_round_trip_for_states_that_need_no_evidence(self):
        instances = [
            self._instance(None),
            self._instance(None, vm_state=vm_states.STOPPED),
            self._instance(task_states.DELETING),
            self._instance(task_states.SPAWNING, vm_state=vm_states.BUILDING),
            self._instance(task_states.PAUSING, vm_state=vm_states.BUILDING),
            self._instance(task_states.IMAGE_UPLOADING),
            self._instance(task_states.REBOOT_STARTED),
            self._instance(task_states.RESIZE_FINISH),
        ]
        for instance in instances:
            self.assertFalse(self.queued(instance))
        self.assertEqual([], self.shape.round_trips)
        self.assertEqual({}, recovery_state.of(self.manager).evidence)

    def test_two_round_trips_per_candidate(self):
        for task_state, action, method in (
                (task_states.PAUSING, instance_actions.PAUSE,
                 'pause_instance'),
                (task_states.REBOOTING, instance_actions.REBOOT, None),
                (task_states.POWERING_OFF, instance_actions.STOP,
                 'stop_instance')):
            instance = self._instance(task_state)
            ctxt = self._request(instance, action)
            if method:
                self._event(ctxt, instance, method)
            del self.shape.round_trips[:]
            self.assertEqual(method is None, self.queued(instance))
            self.assertEqual(
                ['InstanceActionList.get_by_instance_uuid',
                 'InstanceActionEventList.get_by_action'],
                [trip.target for trip in self.shape.round_trips])

    def test_one_round_trip_without_an_action(self):
        instance = self._instance(task_states.PAUSING)
        self.assertTrue(self.queued(instance))
        self.assertEqual(1, len(self.shape.round_trips))

    def test_worst_case_reads_every_newer_action(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        for _ in range(evidence.MAX_ACTIONS - 1):
            self._request(instance, COMPUTE_ACTION)
            # Neither read nor counted.
            self._request(instance, instance_actions.LOCK)
        self.assertTrue(self.queued(instance))
        self.assertEqual(1 + evidence.MAX_ACTIONS,
                         len(self.shape.round_trips))

    # --- closing interrupted events -------------------------------------

    def test_close_interrupted_event(self):
        instance = self._instance(task_states.PAUSING)
        ctxt = self._request(instance, instance_actions.PAUSE)
        self._event(ctxt, instance, 'pause_instance')
        self.assertFalse(self.queued(instance))
        del self.shape.round_trips[:]
        self.assertEqual(1, self.close(instance, task_states.PAUSING))
        # Read with the evidence already: one write, no read.
        self.assertEqual(
            ['InstanceActionEvent.event_finish_with_failure'],
            [trip.target for trip in self.shape.round_trips])
        event, = self._events(instance)
        self.assertEqual('Error', event.result)
        self.assertIsNotNone(event.finish_time)
        self.assertEqual(evidence.INTERRUPTED, event.details)
        # Nothing left open: no round trip the second time.
        del self.shape.round_trips[:]
        self.assertEqual(0, self.close(instance, task_states.PAUSING))
        self.assertEqual([], self.shape.round_trips)

    def test_close_reaches_the_request_behind_a_dead_rerun(self):
        """A start-up that died in its own re-run left two open events.

        Seen in the libvirt deployment's died-during-recovery group: the
        evidence stops reading at the re-run's action, which holds an
        event of the operation here, and the user's request behind it
        kept its event open for good. Failed before: 1 closed, the
        request's event open.
        """
        instance = self._instance(task_states.POWERING_OFF)
        ctxt = self._request(instance, instance_actions.STOP)
        self._event(ctxt, instance, 'stop_instance')
        # The re-run's action: start-up's context, no user.
        rerun = nova_context.get_admin_context()
        objects.InstanceAction.action_start(rerun, instance.uuid,
                                            instance_actions.STOP,
                                            want_result=False)
        self._event(rerun, instance, 'stop_instance')
        self.assertFalse(self.queued(instance))
        self.assertEqual(2, self.close(instance, task_states.POWERING_OFF))
        self.assertEqual(['Error', 'Error'],
                         [event.result for event in self._events(instance)])

    def test_close_leaves_other_hosts_events(self):
        instance = self._instance(task_states.RESIZE_PREP)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', host='host2')
        self._event(ctxt, instance, 'resize_instance')
        self.assertFalse(self.queued(instance))
        self.assertEqual(1, self.close(instance, task_states.RESIZE_PREP))
        prep, resize = self._events(instance)
        self.assertIsNone(prep.finish_time)
        self.assertEqual('Error', resize.result)

    def test_close_for_compute_set_state(self):
        instance = self._instance(task_states.REBOOT_STARTED)
        ctxt = self._request(instance, instance_actions.REBOOT)
        self._event(ctxt, instance, 'reboot_instance')
        self.assertEqual(1, self.close(instance,
                                       task_states.REBOOT_STARTED))
        self.assertEqual('Error', self._events(instance)[0].result)

    def test_close_finds_the_event_under_a_later_action(self):
        instance = self._instance(task_states.REBOOT_STARTED)
        ctxt = self._request(instance, instance_actions.REBOOT)
        self._event(ctxt, instance, 'reboot_instance')
        self._request(instance, instance_actions.LOCK)
        self.assertEqual(1, self.close(instance,
                                       task_states.REBOOT_STARTED))
        self.assertEqual('Error', self._events(instance)[0].result)

    def _rerun(self, instance, action):
        """A start-up re-run: an action of its own, with no user."""
        ctxt = nova_context.get_admin_context()
        ctxt.request_id = 'req-rerun-%s' % uuidutils.generate_uuid()
        objects.InstanceAction.action_start(ctxt, instance.uuid, action,
                                            want_result=False)
        return ctxt

    def test_close_reads_past_the_re_run_of_this_recovery(self):
        # The rule re-ran the reboot before the events are closed: its own
        # finished event must not hide the user's interrupted one.
        instance = self._instance(task_states.REBOOT_STARTED_HARD)
        ctxt = self._request(instance, instance_actions.REBOOT)
        self._event(ctxt, instance, 'reboot_instance')
        rerun = self._rerun(instance, instance_actions.REBOOT)
        self._event(rerun, instance, 'reboot_instance', finish=True)
        self.assertEqual(1, self.close(instance,
                                       task_states.REBOOT_STARTED_HARD))
        user, again = self._events(instance)
        self.assertEqual('Error', user.result)
        self.assertEqual(evidence.INTERRUPTED, user.details)
        self.assertEqual('Success', again.result)

    def test_close_an_interrupted_re_run_and_its_request(self):
        # The first start-up died inside its re-run: both are open.
        instance = self._instance(task_states.REBOOT_STARTED_HARD)
        ctxt = self._request(instance, instance_actions.REBOOT)
        self._event(ctxt, instance, 'reboot_instance')
        rerun = self._rerun(instance, instance_actions.REBOOT)
        self._event(rerun, instance, 'reboot_instance')
        self.assertEqual(2, self.close(instance,
                                       task_states.REBOOT_STARTED_HARD))
        self.assertEqual(['Error', 'Error'],
                         [event.result for event in self._events(instance)])

    def test_close_an_interrupted_unshelve_spawn(self):
        instance = self._instance(task_states.SPAWNING,
                                  vm_state=vm_states.SHELVED_OFFLOADED)
        ctxt = self._request(instance, instance_actions.UNSHELVE)
        self._event(ctxt, instance, 'unshelve_instance')
        self.assertEqual(1, self.close(instance, task_states.SPAWNING))
        self.assertEqual('Error', self._events(instance)[0].result)

    def test_close_without_open_event_writes_nothing(self):
        instance = self._instance(task_states.REBOOT_STARTED)
        ctxt = self._request(instance, instance_actions.REBOOT)
        self._event(ctxt, instance, 'reboot_instance', finish=True)
        self.assertEqual(0, self.close(instance,
                                       task_states.REBOOT_STARTED))
        self.assertNotIn('InstanceActionEvent.event_finish_with_failure',
                         [trip.target for trip in self.shape.round_trips])

    # --- a snapshot handed off and interrupted --------------------------

    def note(self, instance):
        with self.shape.compute_side():
            return evidence.note_snapshot_interrupted(
                self.manager, self.context, instance)

    def _snapshot(self, finish=True, host=HOST):
        instance = self._instance(task_states.IMAGE_SNAPSHOT)
        ctxt = self._request(instance, instance_actions.CREATE_IMAGE)
        self._event(ctxt, instance, 'snapshot_instance', host=host,
                    finish=finish)
        return instance

    def test_note_snapshot_handed_off(self):
        # snapshot_instance finished its event when it handed the
        # snapshot to the long-task pool; the snapshot itself died.
        instance = self._snapshot()
        self.assertTrue(self.note(instance))
        handed, noted = self._events(instance)
        self.assertEqual(('compute_snapshot_instance', 'Success'),
                         (handed.event, handed.result))
        self.assertEqual(evidence.SNAPSHOT_INTERRUPTED_EVENT, noted.event)
        self.assertEqual('compute_snapshot_interrupted', noted.event)
        self.assertEqual('Error', noted.result)
        self.assertEqual(HOST, noted.host)
        self.assertIsNotNone(noted.finish_time)
        self.assertEqual(evidence.SNAPSHOT_INTERRUPTED, noted.details)
        # On the request's own action, and only once.
        self.assertEqual(handed.action_id, noted.action_id)
        self.assertFalse(self.note(instance))
        self.assertEqual(2, len(self._events(instance)))

    def test_note_snapshot_leaves_an_open_event_to_close(self):
        instance = self._snapshot(finish=False)
        self.assertFalse(self.note(instance))
        event, = self._events(instance)
        self.assertIsNone(event.finish_time)

    def test_note_snapshot_of_another_host_writes_nothing(self):
        instance = self._snapshot(host='host2')
        self.assertFalse(self.note(instance))
        self.assertEqual(1, len(self._events(instance)))

    def test_note_snapshot_never_notes_an_older_snapshot_for_a_backup(self):
        # An earlier snapshot went well; the backup is what died, and
        # leaves its own event open for close_interrupted.
        instance = self._snapshot()
        ctxt = self._request(instance, instance_actions.BACKUP)
        self._event(ctxt, instance, 'backup_instance')
        self.assertFalse(self.note(instance))
        self.assertEqual(['Success', None],
                         [event.result for event in self._events(instance)])

    def test_note_snapshot_without_request_writes_nothing(self):
        instance = self._instance(task_states.IMAGE_SNAPSHOT)
        self.assertFalse(self.note(instance))
        self.assertEqual([], self._events(instance))

    # --- the engine uses it -------------------------------------------

    def test_start_up_leaves_queued_request_alone(self):
        self.useFixture(overlay_fixtures.Overlay())
        shape = self.useFixture(sr_fixtures.ProductionShape())
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
        shape = self.useFixture(sr_fixtures.ProductionShape())
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


class UnshownRequestTestCase(EvidenceBase):
    """A confirm: cast with no task_state, found by its migration."""

    CONFIRM = evidence.UNSHOWN['confirm_resize']

    def _confirming(self):
        instance = self._instance(None, vm_state=vm_states.RESIZED,
                                  host='dest')
        return instance, self._request(instance,
                                       instance_actions.CONFIRM_RESIZE)

    def _queued(self, instance):
        with self.shape.compute_side():
            return evidence.queued(self.manager, self.context, instance,
                                   operation=self.CONFIRM)

    def test_confirm_without_event_here_may_be_queued(self):
        instance, _ctxt = self._confirming()
        self.assertTrue(self._queued(instance))

    def test_confirm_event_here_means_reached(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize')
        self.assertFalse(self._queued(instance))

    def test_confirm_event_elsewhere_proves_nothing(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize', host='other')
        self.assertTrue(self._queued(instance))

    def test_an_earlier_confirm_proves_nothing(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize', finish=True)
        self._request(instance, instance_actions.CONFIRM_RESIZE)
        self.assertTrue(self._queued(instance))

    def test_the_interrupted_confirm_event_is_closed(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize')
        self.assertFalse(self._queued(instance))
        with self.shape.compute_side():
            closed = evidence.close_interrupted(
                self.manager, self.context, instance, None,
                methods=self.CONFIRM.methods)
        self.assertEqual(1, closed)
        [event] = self._events(instance)
        self.assertEqual('Error', event.result)


class RegistryTablesTestCase(test.NoDBTestCase):
    """The tables the evidence reads are the registry, split its way."""

    def test_evidence_asks_for_every_checked_state_only(self):
        self.assertEqual(
            {state.name: (state.actions, state.methods)
             for state in registry.TASK_STATES if state.checked},
            {name: tuple(op) for name, op in evidence.API_SET.items()})

    def test_reached_states_are_the_saved_unchecked_ones(self):
        self.assertEqual(set(), set(evidence.API_SET) & set(evidence.REACHED))
        self.assertEqual(
            {state.name for state in registry.TASK_STATES if state.set_by},
            set(evidence.API_SET) | set(evidence.REACHED))

    def test_hand_offs(self):
        self.assertEqual(
            frozenset(['prep_resize', 'revert_resize',
                       'prep_snapshot_based_resize_at_dest',
                       'revert_snapshot_based_resize_at_dest']),
            evidence.HANDS_ON)

    def test_confirm_reads_the_never_saved_confirming_state(self):
        state = registry.BY_NAME[task_states.RESIZE_CONFIRMING]
        self.assertEqual((), state.set_by)
        self.assertEqual((state.actions, state.methods),
                         tuple(evidence.UNSHOWN['confirm_resize']))
