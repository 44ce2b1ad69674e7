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

import contextlib
import inspect
import os
import re
from unittest import mock

from oslo_utils import uuidutils
import sqlalchemy as sa

from nova.compute import api as compute_api
from nova.compute import instance_actions
from nova.compute import manager as compute_manager
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova.db.main import api as db_api
from nova import objects
from nova import test

from nova_recover import evidence
from nova_recover import sweep
from nova_recover.tests import fixtures as recover_fixtures

HOST = 'host1'


class FakeManager(object):
    host = HOST


class EvidenceTestCase(test.TestCase):
    """The evidence read from a real (sqlite) nova database."""

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        self.manager = FakeManager()
        self.mock_watch = self.useFixture(
            test.fixtures.MockPatchObject(sweep, 'watch')).mock

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
        action_ids = [action.id for action in action_list]
        events = []
        for action_id in action_ids:
            events.extend(objects.InstanceActionEventList.get_by_action(
                self.context, action_id))
        return sorted(events, key=lambda e: e.id)

    @contextlib.contextmanager
    def _count_statements(self):
        statements = []
        engine = db_api.get_engine()

        def count(conn, cursor, statement, *args):
            # Nova's sqlite set-up emits BEGIN itself; it is no query.
            if not statement.startswith(('BEGIN', 'SAVEPOINT', 'RELEASE')):
                statements.append(statement)

        sa.event.listen(engine, 'before_cursor_execute', count)
        try:
            yield statements
        finally:
            sa.event.remove(engine, 'before_cursor_execute', count)

    # --- decisions ---------------------------------------------------

    def test_request_without_compute_event_is_queued(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        self.assertTrue(evidence.queued(self.manager, self.context, instance))
        self.mock_watch.assert_called_once_with(self.manager, instance)

    def test_compute_event_on_this_host_means_reached(self):
        instance = self._instance(task_states.PAUSING)
        ctxt = self._request(instance, instance_actions.PAUSE)
        self._event(ctxt, instance, 'pause_instance')
        self.assertFalse(evidence.queued(self.manager, self.context,
                                         instance))
        self.mock_watch.assert_not_called()

    def test_no_action_is_never_started(self):
        # The API died between setting the state and recording the request.
        instance = self._instance(task_states.POWERING_OFF)
        self.assertTrue(evidence.queued(self.manager, self.context, instance))

    def test_event_on_another_host_does_not_count(self):
        # An evacuation rebuilds on the destination.
        instance = self._instance(task_states.REBUILDING)
        ctxt = self._request(instance, instance_actions.EVACUATE)
        self._event(ctxt, instance, 'rebuild_instance', host='host2')
        self.assertTrue(evidence.queued(self.manager, self.context, instance))

    def test_event_of_an_older_request_does_not_count(self):
        instance = self._instance(task_states.REBOOTING)
        old = self._request(instance, instance_actions.REBOOT)
        self._event(old, instance, 'reboot_instance', finish=True)
        self._request(instance, instance_actions.REBOOT)
        self.assertTrue(evidence.queued(self.manager, self.context, instance))

    def test_event_of_another_operation_does_not_count(self):
        instance = self._instance(task_states.PAUSING)
        ctxt = self._request(instance, instance_actions.PAUSE)
        self._event(ctxt, instance, 'stop_instance')
        self.assertTrue(evidence.queued(self.manager, self.context, instance))

    def test_finished_event_counts(self):
        # snapshot_instance finishes its event once the upload thread runs.
        instance = self._instance(task_states.IMAGE_SNAPSHOT_PENDING)
        ctxt = self._request(instance, instance_actions.CREATE_IMAGE)
        self._event(ctxt, instance, 'snapshot_instance', finish=True)
        self.assertFalse(evidence.queued(self.manager, self.context,
                                         instance))

    def test_recovery_rerun_on_a_later_action_counts(self):
        # A re-run with an admin context attaches its event to the last
        # action, here a lock recorded after the stop.
        instance = self._instance(task_states.POWERING_OFF)
        self._request(instance, instance_actions.STOP)
        self._request(instance, instance_actions.LOCK)
        self._event(nova_context.get_admin_context(), instance,
                    'stop_instance')
        self.assertFalse(evidence.queued(self.manager, self.context,
                                         instance))

    def test_volume_backed_shelve_goes_to_shelve_offload(self):
        instance = self._instance(task_states.SHELVING)
        ctxt = self._request(instance, instance_actions.SHELVE)
        self._event(ctxt, instance, 'shelve_offload_instance')
        self.assertFalse(evidence.queued(self.manager, self.context,
                                         instance))

    def test_resize_to_another_host_reached_at_source_step(self):
        instance = self._instance(task_states.RESIZE_PREP)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', host='host2',
                    finish=True)
        self.assertTrue(evidence.queued(self.manager, self.context, instance))
        self._event(ctxt, instance, 'resize_instance')
        manager = FakeManager()
        self.assertFalse(evidence.queued(manager, self.context, instance))

    def test_forced_is_reached(self):
        instance = self._instance(task_states.PAUSING)
        self._request(instance, instance_actions.PAUSE)
        with evidence.forced(instance.uuid):
            self.assertFalse(evidence.queued(self.manager, self.context,
                                             instance))
        self.assertTrue(evidence.queued(self.manager, self.context, instance))

    # --- cost --------------------------------------------------------

    def test_no_statement_for_states_that_need_no_evidence(self):
        instances = [
            self._instance(None),
            self._instance(None, vm_state=vm_states.STOPPED),
            self._instance(task_states.DELETING),
            self._instance(task_states.SPAWNING, vm_state=vm_states.BUILDING),
            self._instance(task_states.PAUSING, vm_state=vm_states.BUILDING),
            self._instance(task_states.IMAGE_UPLOADING),
            self._instance(task_states.REBOOT_STARTED),
            self._instance(task_states.RESIZE_MIGRATED),
        ]
        with self._count_statements() as statements:
            for instance in instances:
                self.assertFalse(evidence.queued(self.manager, self.context,
                                                 instance))
        self.assertEqual([], statements)
        self.assertFalse(hasattr(self.manager, evidence._CACHE))

    def test_one_statement_for_all_candidates(self):
        candidates = []
        for task_state, action in (
                (task_states.PAUSING, instance_actions.PAUSE),
                (task_states.IMAGE_SNAPSHOT_PENDING,
                 instance_actions.CREATE_IMAGE),
                (task_states.REBOOTING, instance_actions.REBOOT),
                (task_states.POWERING_OFF, instance_actions.STOP)):
            instance = self._instance(task_state)
            ctxt = self._request(instance, action)
            candidates.append((instance, ctxt))
        # Half of them reached this host.
        self._event(candidates[0][1], candidates[0][0], 'pause_instance')
        self._event(candidates[2][1], candidates[2][0], 'reboot_instance')
        healthy = [self._instance(None) for _ in range(5)]
        other_host = self._instance(task_states.PAUSING, host='host2')
        self._request(other_host, instance_actions.PAUSE)

        with self._count_statements() as statements:
            results = [evidence.queued(self.manager, self.context, inst)
                       for inst, _ctxt in candidates]
            for inst in healthy:
                evidence.queued(self.manager, self.context, inst)
        self.assertEqual([False, True, False, True], results)
        self.assertEqual(1, len(statements), statements)
        self.assertEqual(
            sorted(inst.uuid for inst, _ctxt in candidates),
            sorted(getattr(self.manager, evidence._CACHE)))

        # A new start-up (a new manager) reads afresh, once.
        with self._count_statements() as statements:
            manager = FakeManager()
            for inst, _ctxt in candidates:
                evidence.queued(manager, self.context, inst)
        self.assertEqual(1, len(statements), statements)

    # --- closing interrupted events -------------------------------------

    def test_close_interrupted_event(self):
        instance = self._instance(task_states.PAUSING)
        ctxt = self._request(instance, instance_actions.PAUSE)
        self._event(ctxt, instance, 'pause_instance')
        self._event(ctxt, instance, 'pause_instance', host='host2')
        self.assertFalse(evidence.queued(self.manager, self.context,
                                         instance))
        self.assertEqual(1, evidence.close_interrupted(
            self.manager, self.context, instance, task_states.PAUSING))
        mine, other = self._events(instance)
        self.assertEqual('Error', mine.result)
        self.assertIsNotNone(mine.finish_time)
        self.assertEqual(evidence.INTERRUPTED, mine.details)
        self.assertIsNone(other.finish_time)
        # Nothing left open: no statement the second time.
        with self._count_statements() as statements:
            self.assertEqual(0, evidence.close_interrupted(
                self.manager, self.context, instance, task_states.PAUSING))
        self.assertEqual([], statements)

    def test_close_gives_rerun_its_own_result(self):
        instance = self._instance(task_states.POWERING_OFF)
        ctxt = self._request(instance, instance_actions.STOP)
        self._event(ctxt, instance, 'stop_instance')
        self.assertFalse(evidence.queued(self.manager, self.context,
                                         instance))
        # The re-run at start-up: nova finishes the first event by name.
        self._event(nova_context.get_admin_context(), instance,
                    'stop_instance', finish=True)
        evidence.close_interrupted(self.manager, self.context, instance,
                                   task_states.POWERING_OFF)
        interrupted, rerun = self._events(instance)
        self.assertEqual('Error', interrupted.result)
        self.assertEqual(evidence.INTERRUPTED, interrupted.details)
        self.assertEqual('Success', rerun.result)
        self.assertIsNotNone(rerun.finish_time)

    def test_close_for_compute_set_state(self):
        instance = self._instance(task_states.REBOOT_STARTED)
        ctxt = self._request(instance, instance_actions.REBOOT)
        self._event(ctxt, instance, 'reboot_instance')
        self.assertEqual(1, evidence.close_interrupted(
            self.manager, self.context, instance,
            task_states.REBOOT_STARTED))
        self.assertEqual('Error', self._events(instance)[0].result)

    # --- the engine uses it -------------------------------------------

    def test_start_up_leaves_queued_request_alone(self):
        self.useFixture(recover_fixtures.Overlay())
        self.flags(host=HOST)
        compute = compute_manager.ComputeManager()
        instance = self._instance(task_states.POWERING_OFF)
        self._request(instance, instance_actions.STOP)
        with mock.patch.object(compute, 'stop_instance') as stop:
            compute._init_instance(self.context, instance)
        stop.assert_not_called()
        instance.refresh()
        self.assertEqual(task_states.POWERING_OFF, instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)


class TableTestCase(test.NoDBTestCase):
    """The table matches the nova it runs on."""

    def test_every_state_the_api_sets_is_in_the_table(self):
        source = inspect.getsource(compute_api)
        found = set(re.findall(r'task_state\s*=\s*task_states\.(\w+)',
                               source))
        # ALLOW_REBOOT is a list of allowed states in a decorator.
        api_set = {getattr(task_states, name) for name in found
                   if name != 'ALLOW_REBOOT'}
        # SCHEDULING belongs to a build (vm_state BUILDING, reached) and
        # DELETING is always finished at start-up, as stock nova does.
        api_set -= {task_states.SCHEDULING, task_states.DELETING}
        self.assertEqual(set(), api_set - set(evidence.API_SET))
        self.assertEqual(set(), set(evidence.API_SET) - api_set)

    def test_action_names_are_nova_actions(self):
        known = {value for name, value in vars(instance_actions).items()
                 if name.isupper() and isinstance(value, str)}
        for state, op in evidence.API_SET.items():
            self.assertTrue(op.actions, state)
            self.assertEqual(set(), set(op.actions) - known, state)

    def test_methods_record_compute_events(self):
        source = inspect.getsource(compute_manager.ComputeManager)
        methods = set()
        for op in evidence.API_SET.values():
            methods.update(op.methods)
        for names in evidence.REACHED.values():
            methods.update(names)
        for method in methods:
            match = re.search(
                r'((?:    @[^\n]*\n)+)    def %s\(' % re.escape(method),
                source)
            self.assertIsNotNone(match, method)
            self.assertIn("wrap_instance_event(prefix='compute')",
                          match.group(1), method)

    def test_no_state_is_both_api_set_and_reached(self):
        self.assertEqual(set(), set(evidence.API_SET) & set(evidence.REACHED))

    def test_doc_table_matches_code(self):
        doc = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                           'doc', 'evidence.rst')
        with open(doc) as f:
            text = f.read()
        for state, op in evidence.API_SET.items():
            row = [line for line in text.splitlines()
                   if line.startswith('| ``%s``' % state)]
            self.assertEqual(1, len(row), state)
            for name in op.actions + op.methods:
                self.assertIn(name, row[0], state)
