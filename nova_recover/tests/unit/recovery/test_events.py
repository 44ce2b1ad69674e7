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


from oslo_utils import uuidutils

from nova.compute import instance_actions
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects

from nova_recover.startup_recovery import events
from nova_recover.startup_recovery import evidence
from nova_recover.tests.unit.recovery import test_evidence

HOST = 'host1'
# Saved by the source nova-compute just before it casts to the
# destination, which instance.host already names.
# An action that a compute manager method runs for, so its events are
# read and it counts toward MAX_ACTIONS (unlike lock and unlock).
COMPUTE_ACTION = instance_actions.ATTACH_INTERFACE


class EventsTestCase(test_evidence.EvidenceBase):
    """What start-up writes on the request's action, and at what cost."""

    def close(self, instance, task_state):
        with self.shape.compute_side():
            return events.close_interrupted(self.manager, self.context,
                                              instance, task_state)

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

    def test_close_a_completed_method_as_success(self):
        """nova 31 snapshots in the request's worker: dying after the
        upload finished leaves the event open over a whole image.
        """
        instance = self._instance(task_states.IMAGE_UPLOADING)
        ctxt = self._request(instance, instance_actions.CREATE_IMAGE)
        self._event(ctxt, instance, 'snapshot_instance')
        self.assertFalse(self.queued(instance))
        del self.shape.round_trips[:]
        with self.shape.compute_side():
            closed = events.close_interrupted(
                self.manager, self.context, instance,
                task_states.IMAGE_UPLOADING,
                completed=('snapshot_instance',))
        self.assertEqual(1, closed)
        # One write, a Success; IMAGE_UPLOADING is set on this host, so
        # the evidence had nothing to read before and the actions are
        # read here.
        self.assertEqual(['InstanceActionEvent.event_finish'],
                         [trip.target for trip in self.shape.round_trips
                          if trip.target.startswith('InstanceActionEvent.')])
        event, = self._events(instance)
        self.assertEqual(('compute_snapshot_instance', 'Success'),
                         (event.event, event.result))
        self.assertIsNotNone(event.finish_time)
        self.assertIsNone(event.details)

    def test_close_completed_names_only_its_methods(self):
        # A backup that died uploading had not rotated its old backups
        # yet: its event is interrupted even when the snapshot's is not.
        instance = self._instance(task_states.IMAGE_UPLOADING)
        ctxt = self._request(instance, instance_actions.BACKUP)
        self._event(ctxt, instance, 'backup_instance')
        with self.shape.compute_side():
            events.close_interrupted(
                self.manager, self.context, instance,
                task_states.IMAGE_UPLOADING,
                completed=('snapshot_instance',))
        event, = self._events(instance)
        self.assertEqual(('compute_backup_instance', 'Error'),
                         (event.event, event.result))
        self.assertEqual(evidence.INTERRUPTED, event.details)

    # --- a snapshot handed off and interrupted --------------------------

    def note(self, instance):
        with self.shape.compute_side():
            return events.note_snapshot_interrupted(
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

    def test_the_interrupted_confirm_event_is_closed(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize')
        self.assertFalse(self._confirm_queued(instance))
        with self.shape.compute_side():
            closed = events.close_interrupted(
                self.manager, self.context, instance, None,
                methods=self.CONFIRM.methods)
        self.assertEqual(1, closed)
        [event] = self._events(instance)
        self.assertEqual('Error', event.result)
