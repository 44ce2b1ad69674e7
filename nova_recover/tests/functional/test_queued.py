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

"""Requests cast while nova-compute was down must survive its start-up.

Each test stops the compute service, sends one request through the API
(the oslo.messaging fake transport keeps the cast on the host's queue
while no server listens, and the next service on that host consumes it),
then starts a new service for the host, as a restart does. The request
must be honoured, as the REST API shows it.

The same cases run against stock nova 34 (no overlay); that class
records, as a 'STOCK LOSES' / 'STOCK HONOURS' warning and test detail,
what it measured, and asserts it; with NOVA_RECOVER_STOCK_REPORT=<file>
set, it also appends each line to that file.
"""

import datetime
import os
import time
from unittest import mock

from oslo_log import log as logging
from oslo_utils import timeutils
from testtools import content

from nova.compute import manager as compute_manager
from nova.compute import power_state
from nova.tests.functional.api import client as api_client

from nova_recover.startup_recovery import sweep
from nova_recover.tests.functional import base

LOG = logging.getLogger(__name__)

SETTLE_TIMEOUT = 20

# What stock nova 34 does with each queued request, as measured by
# StockQueuedRequestTestCase (see doc/evidence.rst). For stop and start
# stock re-runs the operation itself at start-up, so the server ends in
# the requested state, but the user's request then fails its
# compare-and-swap and its compute event is left unfinished: counted as
# lost, since the request itself was not honoured.
STOCK_LOSES = frozenset([
    'snapshot', 'pause', 'unpause', 'stop', 'start',
    'soft_reboot', 'hard_reboot', 'rebuild', 'resize',
])


class QueuedRequestMixin(object):

    def setUp(self):
        super().setUp()
        self.flags(allow_resize_to_same_host=True)
        self.addCleanup(self._stop_sweep)

    def _stop_sweep(self):
        compute = self.computes.get(base.HOST)
        if compute is not None:
            sweep.stop(compute.manager)

    # --- the scenario ----------------------------------------------------

    def _queued(self, name, request, check, setup=None):
        server = self.create_server()
        if setup is not None:
            server = setup(server) or server
        compute = self.computes[base.HOST]
        compute.stop()
        result = request(server)
        queued_state = self.task_state(server['id'])
        self.computes[base.HOST] = self.restart_compute_service(compute)
        final = self._settle(server['id'])
        honoured, why = check(server, result, final)
        self._report(name, honoured, queued_state, final, why)
        return honoured

    def _settle(self, server_id):
        """The server once no task is pending, or None when deleted."""
        deadline = time.time() + SETTLE_TIMEOUT
        while True:
            try:
                server = self.api.get_server(server_id)
            except api_client.OpenStackApiNotFoundException:
                return None
            if server['OS-EXT-STS:task_state'] is None or (
                    time.time() > deadline):
                # Let the event of the operation finish as well.
                time.sleep(0.5)
                try:
                    return self.api.get_server(server_id)
                except api_client.OpenStackApiNotFoundException:
                    return None
            time.sleep(0.1)

    def _event(self, server_id, action, method):
        """Result of compute_<method> on the latest action named action."""
        for entry in self.api.get_instance_actions(server_id):
            if entry['action'] != action:
                continue
            details = self.api.get_instance_action_details(
                server_id, entry['request_id'])
            for event in details.get('events', []):
                if event['event'] == 'compute_' + method:
                    return event['result']
            return None
        return None

    def _status_and_event(self, status, action, method):
        def check(server, result, final):
            if final is None:
                return False, 'server deleted'
            event = self._event(server['id'], action, method)
            ok = final['status'] == status and event == 'Success'
            return ok, 'status %s, task %s, compute_%s %s' % (
                final['status'], final['OS-EXT-STS:task_state'], method,
                event)
        return check

    def _action(self, action, body=None):
        def request(server):
            return self.api.post_server_action(server['id'],
                                               {action: body})
        return request

    # --- setups ------------------------------------------------------

    def _paused(self, server):
        self.api.post_server_action(server['id'], {'pause': None})
        return self._wait_for_state_change(server, 'PAUSED')

    def _suspended(self, server):
        return self._suspend_server(server)

    def _stopped(self, server):
        return self._stop_server(server)

    def _rescued(self, server):
        self.api.post_server_action(server['id'], {'rescue': None})
        return self._wait_for_state_change(server, 'RESCUE')

    def _shelved(self, server):
        self.flags(shelved_offload_time=-1)
        self.api.post_server_action(server['id'], {'shelve': None})
        return self._wait_for_state_change(server, 'SHELVED')

    # --- cases -------------------------------------------------------

    def _image_check(self, action, method):
        status_check = self._status_and_event('ACTIVE', action, method)

        def check(server, result, final):
            ok, why = status_check(server, result, final)
            image_id = result['image_id']
            image = self.glance.images.get(image_id)
            if image is None:
                return False, why + ', image %s gone' % image_id
            return ok, why + ', image %s' % image['status']
        return check

    def test_snapshot(self):
        self._run('snapshot', self._action('createImage', {'name': 'snap'}),
                  self._image_check('createImage', 'snapshot_instance'))

    def test_backup(self):
        self._run('backup', self._action(
            'createBackup', {'name': 'bkp', 'backup_type': 'daily',
                             'rotation': 100}),
            self._image_check('createBackup', 'backup_instance'))

    def test_pause(self):
        self._run('pause', self._action('pause'),
                  self._status_and_event('PAUSED', 'pause',
                                         'pause_instance'))

    def test_unpause(self):
        self._run('unpause', self._action('unpause'),
                  self._status_and_event('ACTIVE', 'unpause',
                                         'unpause_instance'),
                  setup=self._paused)

    def test_suspend(self):
        self._run('suspend', self._action('suspend'),
                  self._status_and_event('SUSPENDED', 'suspend',
                                         'suspend_instance'))

    def test_resume(self):
        self._run('resume', self._action('resume'),
                  self._status_and_event('ACTIVE', 'resume',
                                         'resume_instance'),
                  setup=self._suspended)

    def test_stop(self):
        self._run('stop', self._action('os-stop'),
                  self._status_and_event('SHUTOFF', 'stop',
                                         'stop_instance'))

    def test_start(self):
        self._run('start', self._action('os-start'),
                  self._status_and_event('ACTIVE', 'start',
                                         'start_instance'),
                  setup=self._stopped)

    def test_soft_reboot(self):
        self._run('soft_reboot', self._action('reboot', {'type': 'SOFT'}),
                  self._status_and_event('ACTIVE', 'reboot',
                                         'reboot_instance'))

    def test_hard_reboot(self):
        self._run('hard_reboot', self._action('reboot', {'type': 'HARD'}),
                  self._status_and_event('ACTIVE', 'reboot',
                                         'reboot_instance'))

    def test_rebuild(self):
        image = self.glance.auto_disk_config_enabled_image['id']
        self._run('rebuild', self._action('rebuild', {'imageRef': image}),
                  self._status_and_event('ACTIVE', 'rebuild',
                                         'rebuild_instance'))

    def test_rescue(self):
        self._run('rescue', self._action('rescue'),
                  self._status_and_event('RESCUE', 'rescue',
                                         'rescue_instance'))

    def test_unrescue(self):
        self._run('unrescue', self._action('unrescue'),
                  self._status_and_event('ACTIVE', 'unrescue',
                                         'unrescue_instance'),
                  setup=self._rescued)

    def test_shelve(self):
        self.flags(shelved_offload_time=-1)
        self._run('shelve', self._action('shelve'),
                  self._status_and_event('SHELVED', 'shelve',
                                         'shelve_instance'))

    def test_shelve_offload(self):
        self._run('shelve_offload', self._action('shelveOffload'),
                  self._status_and_event('SHELVED_OFFLOADED',
                                         'shelveOffload',
                                         'shelve_offload_instance'),
                  setup=self._shelved)

    def test_resize(self):
        # A fixed id that sorts after nova's default flavors: without one
        # the API picks a random UUID, which sorts first one time in
        # sixteen, and the server is then built with the very flavor it
        # is asked to resize to (400 "must change flavor").
        flavor = self._create_flavor(id='resize-target', memory_mb=1024,
                                     vcpu=1, disk=1)
        self._run('resize', self._action('resize', {'flavorRef': flavor}),
                  self._status_and_event('VERIFY_RESIZE', 'resize',
                                         'finish_resize'))

    def test_delete(self):
        def request(server):
            self.api.delete_server(server['id'])

        def check(server, result, final):
            if final is None:
                return True, 'deleted'
            return False, 'status %s, task %s' % (
                final['status'], final['OS-EXT-STS:task_state'])
        self._run('delete', request, check)


class QueuedRequestTestCase(QueuedRequestMixin, base.CrashRestartTestCase):
    """With the overlay, every queued request is honoured."""

    RECOVER = True

    def _run(self, name, request, check, setup=None):
        self.assertTrue(self._queued(name, request, check, setup),
                        self.getDetails().get('outcome').as_text())

    def _report(self, name, honoured, queued_state, final, why):
        self.addDetail('outcome', content.text_content(
            '%s (queued in task state %s): %s; %s' % (
                name, queued_state, 'honoured' if honoured else 'LOST',
                why)))

    def test_pause_after_an_outage_longer_than_the_grace(self):
        """Queued for longer than the grace, and still not lost.

        A sweep pass at the very end of start-up, when the request is
        taken to be ten graces old but nova has not started the RPC
        server yet, leaves it waiting; the request is then consumed and
        honoured.
        """
        grace = 600
        self.flags(queued_request_grace=grace, group='recover')
        real_hook = compute_manager.ComputeManager.pre_start_hook
        passes = []

        def pre_start_hook(manager, service_ref):
            later = timeutils.utcnow() + datetime.timedelta(
                seconds=grace * 10)
            with mock.patch.object(timeutils, 'utcnow', return_value=later):
                passes.append((sweep.served(manager),
                               sweep.sweep_once(manager)))
            return real_hook(manager, service_ref)

        def request(server):
            self.api.post_server_action(server['id'], {'pause': None})

        check = self._status_and_event('PAUSED', 'pause', 'pause_instance')
        with mock.patch.object(compute_manager.ComputeManager,
                               'pre_start_hook', pre_start_hook):
            honoured = self._queued('pause after a long outage', request,
                                    check)
        ((served, outcomes),) = passes
        self.assertIsNone(served)
        self.assertEqual([sweep.WAITING], list(outcomes.values()))
        # post_start_hook, run by Service.start, recorded the start.
        self.assertIsNotNone(sweep.served(self.computes[base.HOST].manager))
        self.assertTrue(honoured, self.getDetails().get('outcome').as_text())


class StockQueuedRequestTestCase(QueuedRequestMixin,
                                 base.CrashRestartTestCase):
    """Stock nova 34 measured: which queued requests its start-up loses."""

    RECOVER = False

    def _run(self, name, request, check, setup=None):
        honoured = self._queued(name, request, check, setup)
        self.assertEqual(name in STOCK_LOSES, not honoured,
                         self.getDetails().get('outcome').as_text())

    def _report(self, name, honoured, queued_state, final, why):
        line = '%s %s (queued in task state %s): %s' % (
            'STOCK HONOURS' if honoured else 'STOCK LOSES', name,
            queued_state, why)
        LOG.warning(line)
        self.addDetail('outcome', content.text_content(line))
        report = os.environ.get('NOVA_RECOVER_STOCK_REPORT')
        if report:
            with open(report, 'a') as f:
                f.write(line + '\n')


class InterruptedEventTestCase(base.CrashRestartTestCase):
    """A request that reached the host and died: its event says so."""

    RECOVER = True

    def _events(self, server_id, action):
        """The events of each instance action named action, newest first."""
        found = []
        for entry in self.api.get_instance_actions(server_id):
            if entry['action'] == action:
                details = self.api.get_instance_action_details(
                    server_id, entry['request_id'])
                found.append(sorted(details['events'],
                                    key=lambda event: event['start_time']))
        return found

    def test_interrupted_pause_event_is_closed(self):
        """The pause died before the guest paused, so start-up re-runs it

        under an action of its own, and the interrupted event ends Error.
        """

        def pause(driver, instance):
            # The fake driver's pause leaves the guest running.
            driver.instances[instance.uuid].state = power_state.PAUSED

        self.stub_out('nova.virt.fake.FakeDriver.pause', pause)
        server = self.create_server()
        with self.crash_during('pause'):
            self.api.post_server_action(server['id'], {'pause': None})
        server = self._wait_for_state_change(server, 'PAUSED')
        self.assertEqual(power_state.PAUSED,
                         server['OS-EXT-STS:power_state'])
        self.assertNotIn('fault', server)
        rerun, (event,) = self._events(server['id'], 'pause')
        self.assertEqual('compute_pause_instance', event['event'])
        self.assertEqual('Error', event['result'])
        self.assertIsNotNone(event['finish_time'])
        self.assertIn('Interrupted by a nova-compute restart',
                      event.get('details') or '')
        self.assertEqual([('compute_pause_instance', 'Success')],
                         [(e['event'], e['result']) for e in rerun])

    def test_rerun_keeps_its_own_result(self):
        """The re-run runs under an action of its own, so nova's finding

        of events by (action, name) cannot hand its result to the
        interrupted event.
        """
        server = self.create_server()
        with self.crash_during('power_off'):
            self.api.post_server_action(server['id'], {'os-stop': None})
        self._wait_for_state_change(server, 'SHUTOFF')
        stops = [entry for entry in self.api.get_instance_actions(
            server['id']) if entry['action'] == 'stop']
        # Newest first: the start-up re-run, then the user's request.
        self.assertEqual(2, len(stops))
        rerun, request = [
            self.api.get_instance_action_details(
                server['id'], entry['request_id'])['events']
            for entry in stops]
        self.assertEqual([('compute_stop_instance', 'Error')],
                         [(e['event'], e['result']) for e in request])
        self.assertIn('Interrupted by a nova-compute restart',
                      request[0].get('details') or '')
        self.assertEqual([('compute_stop_instance', 'Success')],
                         [(e['event'], e['result']) for e in rerun])
