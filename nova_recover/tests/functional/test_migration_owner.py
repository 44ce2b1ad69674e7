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

"""Two stuck states that no task_state shows at the dying host's start-up.

A confirm that died on the source leaves the server RESIZED with no task
on the destination, and an evacuation that died on its destination
leaves the server on the (down) source: neither host's start-up used to
look at them, and the server stayed so for good.
"""

from nova.compute import power_state
from nova import context as nova_context
from nova import objects

from nova_recover.tests.functional import base

DEST = 'host2'


class MigrationOwnerTestCase(base.CrashRestartTestCase):

    RECOVER = True

    def setUp(self):
        super().setUp()
        self._start_compute(DEST)
        # Cleanups run last in, first out: the request parked by a crash
        # of this compute must unwind before the harness stops it.
        self.addCleanup(self._release_parked)

    def _server_on_source(self):
        server = self._create_server(host=base.HOST, networks='none')
        self.assertEqual(base.HOST, server['OS-EXT-SRV-ATTR:host'])
        return server

    def _migration(self, server, migration_type):
        migrations = objects.MigrationList.get_by_filters(
            nova_context.get_admin_context(),
            {'instance_uuid': server['id'],
             'migration_type': migration_type})
        self.assertEqual(1, len(migrations))
        return migrations[0]

    def test_confirm_dies_on_source(self):
        server = self._server_on_source()
        old_flavor = server['flavor']['original_name']
        new = next(f for f in self.api.get_flavors()
                   if f['name'] != old_flavor)
        server = self._resize_server(server, new['id'])
        self.assertEqual(DEST, server['OS-EXT-SRV-ATTR:host'])
        with self.crash_during('confirm_migration') as crash:
            self.api.post_server_action(server['id'],
                                        {'confirmResize': None})
        # The confirm shows in no task_state, only in the migration.
        self.assertIsNone(crash['task_state'])
        # The restarted source confirmed it again, as the user asked.
        self._wait_for_migration_status(server, ['confirmed'])
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.notifier.wait_for_versioned_notifications(
            'instance.resize_confirm.end')
        server = self.api.get_server(server['id'])
        self.assertEqual('active', server['OS-EXT-STS:vm_state'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual(DEST, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(new['name'], server['flavor']['original_name'])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        self.assertNotIn('fault', server)
        # The old guest is gone from the source; the server runs on the
        # destination and holds resources there only.
        self.assertNotIn(server['id'],
                         self.computes[base.HOST].manager.driver.instances)
        self.assertIn(server['id'],
                      self.computes[DEST].manager.driver.instances)
        dest_rp = self._get_provider_uuid_by_host(DEST)
        self.assertEqual([dest_rp], list(
            self._get_allocations_by_server_uuid(server['id'])))
        migration = self._migration(server, 'resize')
        self.assertEqual({}, self._get_allocations_by_server_uuid(
            migration.uuid))
        # The interrupted confirm's event is closed as Error; the re-run
        # has an action of its own.
        confirms = [row['events'] for row in self.actions(server['id'])
                    if row['action'] == 'confirmResize']
        self.assertEqual([[['compute_confirm_resize', 'Error']],
                          [['compute_confirm_resize', 'Success']]],
                         confirms)

    def _force_down_source(self):
        self.computes[base.HOST].stop()
        service = self.api.get_services(host=base.HOST,
                                         binary='nova-compute')[0]
        self.api.put_service(service['id'], {'forced_down': 'true'})

    def test_evacuation_dies_on_destination(self):
        server = self._server_on_source()
        self._force_down_source()
        with self.crash_during('spawn', host=DEST) as crash:
            self.api.post_server_action(server['id'],
                                        {'evacuate': {'host': DEST}})
        self.assertEqual('rebuild_spawning', crash['task_state'])
        # The restarted destination ended the evacuation on the source,
        # in a state the admin can evacuate from again.
        server = self.api.get_server(server['id'])
        self.assertEqual('error', server['OS-EXT-STS:vm_state'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual(base.HOST, server['OS-EXT-SRV-ATTR:host'])
        # What the destination's rebuild recorded before its spawn: the
        # source, which has the guest, is down and cannot be asked.
        self.assertEqual(power_state.NOSTATE,
                         server['OS-EXT-STS:power_state'])
        self.assertIn('Evacuation to %s interrupted by a nova-compute '
                      'restart; the server can be evacuated again' % DEST,
                      server['fault']['message'])
        self.assertEqual('failed',
                         self._migration(server, 'evacuation').status)
        # No half-spawned guest on the destination, no allocation there;
        # the source's guest and allocation are the user's still.
        self.assertNotIn(server['id'],
                         self.computes[DEST].manager.driver.instances)
        self.assertIn(server['id'],
                      self.computes[base.HOST].manager.driver.instances)
        source_rp = self._get_provider_uuid_by_host(base.HOST)
        self.assertEqual([source_rp], list(
            self._get_allocations_by_server_uuid(server['id'])))
        evacuations = [row['events'] for row in self.actions(server['id'])
                       if row['action'] == 'evacuate']
        # The conductor's part ended well; the destination's died.
        self.assertEqual([[['compute_rebuild_instance', 'Error'],
                           ['rebuild_server', 'Success']]], evacuations)
        # The admin evacuates again, and this time it works.
        server = self._evacuate_server(server, {'host': DEST},
                                       expected_host=DEST,
                                       expected_state='ACTIVE')
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        # nova keeps the source's allocation until the source returns.
        self.assertIn(self._get_provider_uuid_by_host(DEST),
                      self._get_allocations_by_server_uuid(server['id']))
        self.assertIn(server['id'],
                      self.computes[DEST].manager.driver.instances)
