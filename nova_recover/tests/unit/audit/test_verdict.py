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

"""The audit's verdicts on payloads shaped as nova 34 returns them."""

import datetime
import importlib
import sys
from unittest import mock

from oslotest import base

from nova_recover.audit import verdict
from nova_recover.tests.unit import audit as fake

OUTCOMES = {
    'powering-off': ('powering', 'STOPPED (stop retried or recorded)'),
    'scheduling': ('build', 'ERROR + fault'),
}


def _judge(server, actions=(), services=None, grace=600, outcomes=OUTCOMES):
    if services is None:
        services = [fake.service()]
    return verdict.judge(server, list(actions), services, fake.NOW,
                         grace=grace, outcomes=outcomes)


def _mechanism(name):
    """A module of the recovery mechanism, wherever the package has it."""
    for path in ('nova_recover.startup_recovery.' + name,
                 'nova_recover.' + name):
        try:
            return importlib.import_module(path)
        except ImportError:
            continue
    return None


class ReachedTestCase(base.BaseTestCase):
    """The request's compute event ran on the server's host."""

    def _stop(self, **event):
        return [fake.action('stop', start=300, events=[
            fake.event('stop_instance', start=290, **event)])]

    def test_open_event_on_a_down_service_died(self):
        found = _judge(fake.server('powering-off', updated=300),
                       self._stop(),
                       [fake.service(state='down', updated=200)])
        self.assertEqual(verdict.DIED, found.verdict)
        self.assertEqual(fake.HOST, found.verdict_host)
        self.assertEqual('died on cmp1', verdict.describe(found))
        self.assertTrue(verdict.is_stuck(found))
        self.assertEqual(
            'powering rule: STOPPED (stop retried or recorded)',
            found.next_startup)
        self.assertIn('compute_stop_instance started on cmp1', found.reason)
        self.assertIn('nova-compute on cmp1 is down', found.reason)
        self.assertEqual('compute_stop_instance', found.event)

    def test_open_event_on_a_live_service_is_in_progress(self):
        found = _judge(fake.server('powering-off', updated=300),
                       self._stop())
        self.assertEqual(verdict.IN_PROGRESS, found.verdict)
        self.assertEqual('in progress on cmp1', verdict.describe(found))
        self.assertFalse(verdict.is_stuck(found))
        self.assertEqual(300, found.age)

    def test_open_event_idle_past_the_grace_is_stalled(self):
        found = _judge(fake.server('powering-off', updated=300),
                       self._stop(), grace=120)
        self.assertEqual(verdict.STALLED, found.verdict)
        self.assertTrue(verdict.is_stuck(found))
        self.assertIn('nothing changed for 290s', found.reason)

    def test_failed_event_idle_past_the_grace_died(self):
        found = _judge(fake.server('powering-off', updated=300),
                       self._stop(finish=280, result='Error'), grace=120)
        self.assertEqual(verdict.DIED, found.verdict)
        self.assertIn('finished with Error', found.reason)

    def test_failed_event_within_the_grace_is_in_progress(self):
        # reverts_task_state clears the state just after the event ends.
        found = _judge(fake.server('powering-off', updated=300),
                       self._stop(finish=1, result='Error'), grace=120)
        self.assertEqual(verdict.IN_PROGRESS, found.verdict)

    def test_finish_time_counts_as_progress(self):
        # snapshot_instance finishes its event and uploads in a thread.
        server = fake.server('image_uploading', updated=900)
        actions = [fake.action('createImage', start=1000, events=[
            fake.event('snapshot_instance', start=990, finish=100,
                       result='Success')])]
        found = _judge(server, actions)
        self.assertEqual(verdict.IN_PROGRESS, found.verdict)
        self.assertEqual(900, found.age)

    def test_event_on_a_later_action_counts(self):
        # A recovery re-run attaches its event to the newest action.
        actions = [
            fake.action('lock', start=100, events=[
                fake.event('stop_instance', start=90)]),
            fake.action('stop', start=300, events=[]),
        ]
        found = _judge(fake.server('powering-off', updated=300), actions,
                       [fake.service(state='down')])
        self.assertEqual(verdict.DIED, found.verdict)

    def test_compute_set_state_without_event_died_on_down_service(self):
        server = fake.server('reboot_started_hard', updated=700)
        found = _judge(server, [fake.action('reboot', start=710)],
                       [fake.service(state='down')])
        self.assertEqual(verdict.DIED, found.verdict)
        self.assertEqual('recovered as interrupted (see the coverage table)',
                         found.next_startup)

    def test_event_closed_by_a_start_up_is_named(self):
        actions = [fake.action('stop', start=3000, events=[
            fake.event('stop_instance', start=2990, finish=2000,
                       result='Error', details=verdict.INTERRUPTED)])]
        found = _judge(fake.server('powering-off', updated=1900), actions)
        self.assertEqual(verdict.DIED, found.verdict)
        self.assertIn('closed by a nova-recover start-up', found.reason)

    def test_newest_event_decides(self):
        actions = [fake.action('stop', start=3000, events=[
            fake.event('stop_instance', start=30),
            fake.event('stop_instance', start=2990, finish=2980,
                       result='Error'),
        ])]
        found = _judge(fake.server('powering-off', updated=3000), actions)
        self.assertEqual(verdict.IN_PROGRESS, found.verdict)


class NotReachedTestCase(base.BaseTestCase):
    """No compute event of the request on the server's host."""

    def test_down_service_is_queued(self):
        found = _judge(fake.server('powering-off', updated=3000),
                       [fake.action('stop', start=3000, events=[])],
                       [fake.service(state='down', updated=4000)])
        self.assertEqual(verdict.QUEUED, found.verdict)
        self.assertEqual('queued for cmp1', verdict.describe(found))
        self.assertTrue(verdict.is_stuck(found))
        self.assertEqual(
            'wait for the request; after the grace, powering rule: '
            'STOPPED (stop retried or recorded)', found.next_startup)

    def test_live_service_within_the_grace_is_in_progress(self):
        found = _judge(fake.server('powering-off', updated=30),
                       [fake.action('stop', start=30, events=[])])
        self.assertEqual(verdict.IN_PROGRESS, found.verdict)

    def test_live_service_past_the_grace_is_lost(self):
        found = _judge(fake.server('powering-off', updated=700),
                       [fake.action('stop', start=700, events=[])])
        self.assertEqual(verdict.LOST, found.verdict)
        self.assertEqual('lost', verdict.describe(found))
        self.assertEqual(fake.HOST, found.host)
        self.assertIn('no compute event 700s after the request',
                      found.reason)

    def test_no_action_dates_the_request_by_the_update(self):
        # The API died between saving the state and recording the action.
        found = _judge(fake.server('pausing', updated=700),
                       [fake.action('create', start=90000, events=None)])
        self.assertEqual(verdict.LOST, found.verdict)
        self.assertIsNone(found.request)
        self.assertIn('no pause action recorded', found.reason)

    def test_event_of_an_older_request_does_not_count(self):
        server = fake.server('powering-off', updated=3000)
        actions = [
            fake.action('stop', start=3000, request_id='req-new'),
            fake.action('stop', start=9000, request_id='req-old'),
        ]
        self.assertEqual(['req-new'],
                         verdict.actions_to_show(server, actions))
        actions[0]['events'] = []
        actions[1]['events'] = [fake.event('stop_instance', start=8990,
                                           finish=8980, result='Success')]
        found = _judge(server, actions, [fake.service(state='down')])
        self.assertEqual(verdict.QUEUED, found.verdict)

    def test_event_on_another_host_does_not_count(self):
        # prep_resize ran on the destination; resize_instance waits for
        # the source.
        server = fake.server('resize_prep', updated=900)
        actions = [fake.action('resize', start=900, events=[
            fake.event('prep_resize', start=890, finish=880,
                       result='Success', host=fake.OTHER)])]
        found = _judge(server, actions, [fake.service(state='down')])
        self.assertEqual(verdict.QUEUED, found.verdict)
        self.assertIn('events of the operation on cmp2', found.reason)

    def test_missing_or_forced_down_service_is_not_alive(self):
        for services in ([], [fake.service(forced_down=True, state='down')],
                         [fake.service(binary='nova-conductor')]):
            found = _judge(fake.server('pausing', updated=60),
                           [fake.action('pause', start=60, events=[])],
                           services)
            self.assertEqual(verdict.QUEUED, found.verdict, services)

    def test_unchecked_state_has_its_rule_as_next_start_up(self):
        # A build is never retried from start-up, queued or not.
        server = fake.server('scheduling', vm_state='building', updated=60,
                             power_state=0)
        found = _judge(server, [fake.action('create', start=70, events=[])],
                       [fake.service(state='down')])
        self.assertEqual(verdict.QUEUED, found.verdict)
        self.assertEqual('build rule: ERROR + fault', found.next_startup)
        self.assertEqual('NOSTATE', found.power_state)


class NoHostTestCase(base.BaseTestCase):

    def _unshelving(self, updated):
        return fake.server('unshelving', vm_state='shelved_offloaded',
                           host=None, updated=updated, power_state=4)

    def test_recent_is_in_progress(self):
        found = _judge(self._unshelving(60),
                       [fake.action('unshelve', start=60, events=[])])
        self.assertEqual(verdict.IN_PROGRESS, found.verdict)
        self.assertEqual('in progress', verdict.describe(found))
        self.assertEqual('Shutdown', found.power_state)

    def test_old_is_lost_and_no_start_up_sees_it(self):
        found = _judge(self._unshelving(4000),
                       [fake.action('unshelve', start=4000, events=[])])
        self.assertEqual(verdict.LOST, found.verdict)
        self.assertIsNone(found.verdict_host)
        self.assertEqual('none: no compute host, so no start-up sees it',
                         found.next_startup)


class PayloadTestCase(base.BaseTestCase):

    def test_event_without_host_is_an_error(self):
        event = fake.event('stop_instance')
        del event['host']
        self.assertRaises(verdict.AuditError, _judge,
                          fake.server('powering-off'),
                          [fake.action('stop', events=[event])])

    def test_parse_time_reads_every_format_as_naive_utc(self):
        at = datetime.datetime(2026, 12, 1, 8, 0, 0)
        self.assertEqual(at, verdict.parse_time('2026-12-01T08:00:00Z'))
        self.assertEqual(at,
                         verdict.parse_time('2026-12-01T08:00:00.000000'))
        self.assertEqual(at, verdict.parse_time(
            datetime.datetime(2026, 12, 1, 8, 0, 0,
                              tzinfo=datetime.timezone.utc)))
        self.assertIsNone(verdict.parse_time(None))

    def test_aware_now_is_accepted(self):
        now = fake.NOW.replace(tzinfo=datetime.timezone.utc)
        found = verdict.judge(fake.server('pausing', updated=60),
                              [], [fake.service()], now)
        self.assertEqual(60, found.age)

    def test_live_duplicate_service_wins(self):
        services = [fake.service(state='down'), fake.service(state='up')]
        self.assertEqual('up', verdict.service_for(fake.HOST,
                                                   services)['state'])

    def test_unknown_state_is_judged_by_service_and_time(self):
        found = _judge(fake.server('resize_confirming', vm_state='resized',
                                   updated=60),
                       [], [fake.service(state='down')])
        self.assertEqual(verdict.DIED, found.verdict)


class AgreementTestCase(base.BaseTestCase):
    """The audit's copies agree with the code they were copied from."""

    def setUp(self):
        super().setUp()
        self.evidence = _mechanism('evidence')
        if self.evidence is None:
            self.skipTest('nova_recover evidence module not found')

    def test_api_set_rows_are_evidence_api_set(self):
        checked = {state: (op.actions, op.methods)
                   for state, op in verdict.OPERATIONS.items() if op.checked}
        self.assertEqual(
            {state: (tuple(op.actions), tuple(op.methods))
             for state, op in self.evidence.API_SET.items()}, checked)

    def test_other_rows_carry_the_methods_of_reached(self):
        others = {state: op.methods
                  for state, op in verdict.OPERATIONS.items()
                  if not op.checked}
        self.assertEqual(
            {state: tuple(methods)
             for state, methods in self.evidence.REACHED.items()}, others)

    def test_unchecked_api_states_are_coverage_not_checked(self):
        from nova_recover import coverage
        self.assertEqual(
            set(coverage.NOT_CHECKED),
            {state for state, op in verdict.OPERATIONS.items()
             if op.api and not op.checked})

    def test_actions_are_nova_constants(self):
        from nova.compute import instance_actions
        known = {value for name, value in vars(instance_actions).items()
                 if name.isupper() and isinstance(value, str)}
        for state, op in verdict.OPERATIONS.items():
            self.assertTrue(set(op.actions) <= known, state)

    def test_constants(self):
        from nova.compute import power_state
        from nova_recover import conf
        self.assertEqual(self.evidence.PREFIX, verdict.PREFIX)
        self.assertEqual(self.evidence.INTERRUPTED, verdict.INTERRUPTED)
        defaults = {opt.name: opt.default for opt in conf.recover_opts}
        self.assertEqual(defaults['queued_request_grace'],
                         verdict.DEFAULT_GRACE)
        self.assertEqual(sorted(power_state.STATE_MAP),
                         sorted(verdict.POWER_STATES))
        for name in ('RUNNING', 'PAUSED', 'SHUTDOWN', 'CRASHED',
                     'SUSPENDED'):
            self.assertEqual(name.lower(), verdict.POWER_STATES[
                getattr(power_state, name)].lower())


class OutcomesTestCase(base.BaseTestCase):

    def test_read_from_the_coverage_table(self):
        outcomes = verdict.load_outcomes()
        self.assertEqual('reboot', outcomes['rebooting'][0])
        self.assertTrue(outcomes['rebooting'][1])
        self.assertTrue(set(verdict.OPERATIONS) <= set(outcomes))

    def test_none_without_the_coverage_table(self):
        with mock.patch.dict(sys.modules, {'nova_recover.coverage': None}):
            self.assertEqual({}, verdict.load_outcomes())
