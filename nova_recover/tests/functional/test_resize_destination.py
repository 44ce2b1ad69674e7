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

    def test_destination_restarts_while_the_source_has_the_revert(self):
        """The destination's revert_resize finished and cast the rest to a

        source that is down. The destination restarts: before, it read
        its finished revert_resize as a revert that died there and put
        the server in ERROR, which made the source's finish_revert_resize
        fail too. Now it leaves the server to the source, which finishes
        the revert when it comes back.
        """
        server = self._server_on_source()
        old_flavor = server['flavor']
        new = next(f for f in self.api.get_flavors()
                   if f['name'] != old_flavor['original_name'])
        server = self._resize_server(server, new['id'])
        self.assertEqual(DEST, server['OS-EXT-SRV-ATTR:host'])
        source = self.computes[base.HOST]
        source.stop()
        self.api.post_server_action(server['id'], {'revertResize': None})
        self._wait_for_instance_action_event(
            server, 'revertResize', 'compute_revert_resize', 'success')
        self.assertEqual('resize_reverting', self.task_state(server['id']))
        self.kill_and_restart(DEST)
        server = self.api.get_server(server['id'])
        self.assertEqual('resize_reverting', server['OS-EXT-STS:task_state'])
        self.assertEqual('REVERT_RESIZE', server['status'])
        self.assertNotIn('fault', server)
        # The source comes back and consumes its finish_revert_resize.
        self.computes[base.HOST] = self.restart_compute_service(source)
        server = self._wait_for_state_change(server, 'ACTIVE')
        self._wait_for_migration_status(server, ['reverted'])
        server = self.api.get_server(server['id'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual(base.HOST, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(old_flavor['original_name'],
                         server['flavor']['original_name'])
        self.assertNotIn('fault', server)
