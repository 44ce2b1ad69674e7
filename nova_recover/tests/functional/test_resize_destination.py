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

"""A resize between two hosts whose destination dies.

The source keeps the original disk until the resize is confirmed, so the
owner's server must come back there, with its old flavor, and not end in
ERROR on the destination, from where it could neither be reverted nor
confirmed.
"""

import threading
from unittest import mock

from nova.compute import power_state

from nova_recover.tests.functional import base

DEST = 'host2'


class ResizeDestinationDiesTestCase(base.CrashRestartTestCase):

    RECOVER = True

    def setUp(self):
        super().setUp()
        self._start_compute(DEST)
        # Cleanups run last in, first out: the request parked by a crash
        # of this compute must unwind before the harness stops it, which
        # waits for its RPC server's requests.
        self.addCleanup(self._release_parked)

    def _server_on_source(self):
        server = self._create_server(host=base.HOST, networks='none')
        self.assertEqual(base.HOST, server['OS-EXT-SRV-ATTR:host'])
        return server

    def test_finish_migration_dies_on_destination(self):
        server = self._server_on_source()
        old_flavor = server['flavor']
        flavors = self.api.get_flavors()
        new = next(f for f in flavors
                   if f['name'] != old_flavor['original_name'])
        with self.crash_during('finish_migration', host=DEST) as crash:
            self.api.post_server_action(server['id'], {'resize': {
                'flavorRef': new['id']}})
        self.assertEqual('resize_finish', crash['task_state'])
        # The restarted destination handed the revert to the source.
        server = self._wait_for_state_change(server, 'ACTIVE')
        self._wait_for_migration_status(server, ['reverted'])
        self.notifier.wait_for_versioned_notifications(
            'instance.resize_revert.end')
        server = self.api.get_server(server['id'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual(base.HOST, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(old_flavor['original_name'],
                         server['flavor']['original_name'])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        self.assertNotIn('fault', server)
        # The guest is back on the source only, and so are its resources.
        self.assertIn(server['id'],
                      self.computes[base.HOST].manager.driver.instances)
        self.assertNotIn(server['id'],
                         self.computes[DEST].manager.driver.instances)
        source_rp = self._get_provider_uuid_by_host(base.HOST)
        self.assertEqual([source_rp], list(
            self._get_allocations_by_server_uuid(server['id'])))

    # A destination restarting while finish_revert_resize waits for the
    # source (issue #16, item 3). The destination's revert_resize has
    # destroyed its guest, marked the migration reverted and cast
    # finish_revert_resize to the source; until the source runs it, the
    # instance stays on the destination in resize_reverting. Start-up on
    # the destination must read its finished revert_resize event as the
    # hand-off it is (evidence.HANDS_ON) and leave the server alone.

    def _revert_waiting_for_source(self, hold):
        """Resize source -> destination, then revert; return the server

        once the destination's revert_resize has finished, and the old
        and new flavors' names. hold() runs once the server is resized,
        before the revert, and keeps the source from running
        finish_revert_resize.
        """
        server = self._server_on_source()
        old_flavor = server['flavor']['original_name']
        new = next(f for f in self.api.get_flavors()
                   if f['name'] != old_flavor)
        server = self._resize_server(server, new['id'])
        self.assertEqual(DEST, server['OS-EXT-SRV-ATTR:host'])
        hold()
        # The revertResize action's events are the request's own.
        self._actions_before = len(
            self.api.get_instance_actions(server['id']))
        self.api.post_server_action(server['id'], {'revertResize': None})
        self._wait_for_instance_action_event(
            server, 'revertResize', 'compute_revert_resize', 'success')
        self.assertEqual('resize_reverting', self.task_state(server['id']))
        return server, old_flavor, new['name']

    def _restart_destination_leaves_it_alone(self, server, new_flavor):
        """Restart the destination; its start-up must not touch the server.
        """
        before = self.outcome(server['id'])
        handed_on = {
            'vm_state': 'resized', 'task_state': 'resize_reverting',
            # instance.host moves back only when the source saves it.
            'host': DEST, 'flavor': new_flavor,
            'power_state': 'running',
            # The destination's revert_resize destroyed its guest.
            'guest': 'none', 'images': [],
            'events': [['compute_revert_resize', 'Success']],
            'fault': None}
        self.assertEqual(handed_on, _without_actions(before))
        self.assertEqual('reverted', self._migration(server)['status'])
        self.kill_and_restart(DEST)
        # Start-up ran to the end (init_host is synchronous): nothing in
        # the row changed, no action or event was added, no fault set.
        self.assertEqual(before, self.outcome(server['id']))
        self.assertEqual('REVERT_RESIZE',
                         self.api.get_server(server['id'])['status'])
        self.assertEqual('reverted', self._migration(server)['status'])

    def _assert_reverted_on_source(self, server, old_flavor):
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.notifier.wait_for_versioned_notifications(
            'instance.resize_revert.end')
        self._wait_for_instance_action_event(
            server, 'revertResize', 'compute_finish_revert_resize',
            'success')
        row = self.outcome(server['id'])
        self.assertEqual({
            'vm_state': 'active', 'task_state': None, 'host': base.HOST,
            'flavor': old_flavor, 'power_state': 'running',
            # guest_of() reads the server's host, the source.
            'guest': 'running', 'images': [],
            'events': [['compute_finish_revert_resize', 'Success'],
                       ['compute_revert_resize', 'Success']],
            'fault': None}, _without_actions(row))
        self.assertEqual(
            ['create', 'resize', 'revertResize'],
            [action['action'] for action in row['actions']])
        # The guest is on the source only, and so are its resources.
        self.assertNotIn(server['id'],
                         self.computes[DEST].manager.driver.instances)
        self.assertEqual('reverted', self._migration(server)['status'])
        source_rp = self._get_provider_uuid_by_host(base.HOST)
        self.assertEqual([source_rp], list(
            self._get_allocations_by_server_uuid(server['id'])))

    def _migration(self, server):
        [migration] = [m for m in self.api.get_migrations()
                       if m['instance_uuid'] == server['id']]
        return migration

    def test_destination_restarts_while_the_source_has_the_revert(self):
        """The destination's revert_resize finished and cast the rest to a

        source that is down. The destination restarts: before, it read
        its finished revert_resize as a revert that died there and put
        the server in ERROR, which made the source's finish_revert_resize
        fail too. Now it leaves the server to the source, which finishes
        the revert when it comes back.
        """
        source = self.computes[base.HOST]
        # finish_revert_resize waits on the stopped source's queue.
        server, old_flavor, new_flavor = self._revert_waiting_for_source(
            source.stop)
        self._restart_destination_leaves_it_alone(server, new_flavor)
        # The source comes back and consumes its finish_revert_resize.
        self.computes[base.HOST] = self.restart_compute_service(source)
        self._assert_reverted_on_source(server, old_flavor)

    def test_destination_restarts_while_the_source_holds_the_revert(self):
        """As above, with the source up: it has taken finish_revert_resize

        off its queue but not yet run it (parked before the manager's
        method, so not even its event has started) when the destination
        restarts; then it runs it.
        """
        source = self.computes[base.HOST].manager
        real = source.finish_revert_resize
        reached = threading.Event()
        release = threading.Event()
        # Whatever happens, the parked request ends before the services.
        self.addCleanup(release.set)

        def parked(*args, **kwargs):
            reached.set()
            release.wait(base.RESTART_TIMEOUT * 4)
            return real(*args, **kwargs)

        patcher = mock.patch.object(source, 'finish_revert_resize',
                                    side_effect=parked)
        with patcher:
            server, old_flavor, new_flavor = (
                self._revert_waiting_for_source(lambda: None))
            self.assertTrue(reached.wait(base.RESTART_TIMEOUT),
                            'the source never got finish_revert_resize')
            self._restart_destination_leaves_it_alone(server, new_flavor)
            release.set()
            self._assert_reverted_on_source(server, old_flavor)


def _without_actions(row):
    return {key: value for key, value in row.items() if key != 'actions'}
