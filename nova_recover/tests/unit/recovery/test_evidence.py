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
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects
from nova import test

from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import registry
from nova_recover.tests import fixtures as sr_fixtures

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

    # What runs compute-side code in threads of its own here
    # (fixtures.ProductionShape).
    THREADS = ()

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        self.manager = FakeManager()
        self.shape = self.useFixture(
            sr_fixtures.ProductionShape(threads=self.THREADS))

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

    CONFIRM = evidence.UNSHOWN['confirm_resize']

    def _confirming(self):
        """A resize confirm requested of the destination host."""
        instance = self._instance(None, vm_state=vm_states.RESIZED,
                                  host='dest')
        return instance, self._request(instance,
                                       instance_actions.CONFIRM_RESIZE)

    def _confirm_queued(self, instance):
        with self.shape.compute_side():
            return evidence.queued(self.manager, self.context, instance,
                                   operation=self.CONFIRM)

    def queued(self, instance, manager=None):
        """evidence.queued as nova-compute start-up calls it."""
        with self.shape.compute_side():
            return evidence.queued(manager or self.manager, self.context,
                                   instance)


class EvidenceTestCase(EvidenceBase):
    """What the evidence proves, and what reading it costs."""

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

    def test_conductor_failure_is_unreadable(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        with mock.patch.object(
                self.shape.indirection.conductor,
                'object_class_action_versions',
                side_effect=test.TestingException('conductor down')):
            self.assertRaises(evidence.Unreadable, self.queued, instance)


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
