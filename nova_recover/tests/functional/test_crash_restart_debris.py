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

"""Crash-and-restart tests for the shelve, rescue, resize and live_migration
rows of scenarios.SCENARIOS, with and without nova-recover, and for the
debris those operations leave: half-uploaded images in glance, migration
records, migration contexts and placement allocations.

The stock classes record what nova 34 does, so a change in either shows.
"""

from unittest import mock

from nova import context as nova_context
from nova import objects

from nova_recover.tests.functional import base
from nova_recover.tests.functional import scenarios
from nova_recover.tests import overlay_fixtures

MODULES = ('shelve', 'shelve_offload', 'unshelve', 'rescue', 'resize',
           'live_migration')
FIELDS = ('task_state', 'vm_state', 'power_state', 'fault')


class _Rows(base.CrashRestartTestCase):

    def _check(self, name):
        scenario = scenarios.by_name(name)
        self.assertIn(scenario.module, MODULES)
        at_crash, row = self.run_scenario(scenario)
        expected = scenario.end if self.RECOVER else scenario.stock
        self.assertEqual(scenario.at_crash, at_crash)
        if self.RECOVER and scenario.known_problem:
            self.expectFailure(scenario.known_problem, self.assertEqual,
                               {}, scenario.differences(row, expected))
            return
        self.assertEqual({}, scenario.differences(row, expected))

    # Helpers for the debris checks.

    def leave_images_saving(self):
        """Images that the driver uploads stay 'saving', as a dead upload
        leaves them (the glance fixture marks every image active).
        """
        real = self.driver.snapshot

        def snapshot(context, instance, image_id, update_task_state):
            self.glance.images[image_id]['status'] = 'saving'
            return real(context, instance, image_id, update_task_state)

        # A plain function, so that crash_during can patch over it.
        patcher = mock.patch.object(self.driver, 'snapshot', new=snapshot)
        patcher.start()
        self.addCleanup(patcher.stop)

    def images_of(self, server_id):
        return {image_id: image['status']
                for image_id, image in self.glance.images.items()
                if image.get('properties', {}).get('instance_uuid') ==
                server_id}

    def migrations_of(self, server_id):
        return [m for m in self.api.get_migrations()
                if m['instance_uuid'] == server_id]

    def db_instance(self, server_id):
        return objects.Instance.get_by_uuid(
            nova_context.get_admin_context(), server_id,
            expected_attrs=['migration_context', 'flavor'])

    def consumer_allocations(self, consumer):
        return self.placement.get(
            '/allocations/%s' % consumer).body['allocations']

    def crash_resize(self, crash_in):
        self.flags(allow_resize_to_same_host=True)
        server = self.create_server()
        flavors = self.api.get_flavors()
        with self.crash_during(crash_in):
            self.api.post_server_action(server['id'], {'resize': {
                'flavorRef': flavors[1]['id']}})
        server = self.api.get_server(server['id'])
        [migration] = self.migrations_of(server['id'])
        return server, migration, flavors[0]

    def crash_live_migration(self):
        """Live-migrate host1 -> host2, killing host1 in the driver."""
        server = self.create_server()
        self._start_compute('host2')
        # The driver step runs in nova's live migration executor, not in
        # an RPC handler; it parks there like any crashed request.
        with self.crash_during('live_migration'):
            self.api.post_server_action(server['id'], {'os-migrateLive': {
                'host': 'host2', 'block_migration': 'auto'}})
        return self.api.get_server(server['id'])


def _add_tests(cls):
    for scenario in scenarios.SCENARIOS:
        name = 'test_%s' % scenario.name
        if scenario.module in MODULES and name not in vars(cls):
            setattr(cls, name,
                    lambda self, name=scenario.name: self._check(name))
    return cls


@_add_tests
class CrashRestartDebrisTestCase(_Rows):
    RECOVER = True

    def test_shelve_deletes_half_uploaded_image(self):
        self.leave_images_saving()
        server = self.create_server()
        with self.crash_during('snapshot', after=True):
            self.api.post_server_action(server['id'], {'shelve': None})
        server = self.api.get_server(server['id'])
        self.assertEqual('SHUTOFF', server['status'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual({}, self.images_of(server['id']))

    def test_snapshot_deletes_half_uploaded_image(self):
        self.leave_images_saving()
        server = self.create_server()
        with self.crash_during('snapshot', after=True):
            self.api.post_server_action(
                server['id'], {'createImage': {'name': 'crash-snapshot'}})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual({}, self.images_of(server['id']))

    def test_finished_snapshot_image_is_kept(self):
        """Glance has the whole image: it is the user's, whatever the
        instance's task state said.
        """
        server = self.create_server()
        with self.crash_during('snapshot', after=True):
            self.api.post_server_action(
                server['id'], {'createImage': {'name': 'crash-snapshot'}})
        self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual(['active'],
                         list(self.images_of(server['id']).values()))

    def test_unshelve_spawn_can_be_unshelved_again(self):
        """An unshelve that died while spawning leaves a server to unshelve.

        It went to ERROR as an interrupted build, with this host's
        allocations kept, though nothing of it ran.
        """
        server = self.create_server()
        image = server['image']['id']
        self.api.post_server_action(server['id'], {'shelve': None})
        server = self._wait_for_state_change(server, 'SHELVED_OFFLOADED',
                                             max_retries=40)
        [shelved_image] = self.images_of(server['id'])
        with self.crash_during('spawn'):
            self.api.post_server_action(server['id'], {'unshelve': None})
        server = self.api.get_server(server['id'])
        self.assertEqual('SHELVED_OFFLOADED', server['status'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertIsNone(server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(image, server['image']['id'])
        self.assertNotIn('fault', server)
        # The dead process's event is closed as interrupted.
        unshelve = self.actions(server['id'])[-1]
        self.assertEqual('unshelve', unshelve['action'])
        self.assertIn(['compute_unshelve_instance', 'Error'],
                      unshelve['events'])
        self.assertEqual({}, self._get_allocations_by_server_uuid(
            server['id']))
        self.assertNotIn(server['id'], self.driver.instances)
        # The image to unshelve from is kept, and is used.
        self.assertEqual({shelved_image: 'active'},
                         self.images_of(server['id']))
        self.api.post_server_action(server['id'], {'unshelve': None})
        server = self._wait_for_state_change(server, 'ACTIVE',
                                             max_retries=40)
        self.assertEqual(image, server['image']['id'])
        self.assertEqual({}, self.images_of(server['id']))

    def test_resize_migrating_leaves_no_debris(self):
        server, migration, old_flavor = self.crash_resize(
            'migrate_disk_and_power_off')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(old_flavor['name'],
                         server['flavor']['original_name'])
        self.assertEqual('error', migration['status'])
        instance = self.db_instance(server['id'])
        self.assertIsNone(instance.migration_context)
        self.assertIsNone(instance.new_flavor)
        self.assertEqual({}, self.consumer_allocations(migration['uuid']))
        self.assertFlavorMatchesAllocation(
            old_flavor, server['id'], self._get_provider_uuid_by_host(
                base.HOST))

    def test_resize_finish_reverts_to_old_flavor(self):
        server, migration, old_flavor = self.crash_resize('finish_migration')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(old_flavor['name'],
                         server['flavor']['original_name'])
        self.assertEqual('error', migration['status'])
        self.assertIsNone(self.db_instance(server['id']).migration_context)
        self.assertEqual({}, self.consumer_allocations(migration['uuid']))
        self.assertFlavorMatchesAllocation(
            old_flavor, server['id'], self._get_provider_uuid_by_host(
                base.HOST))
        # The old guest runs on the hypervisor.
        self.assertIn(server['id'], self.driver.instances)

    def test_resize_revert_ends_reverted(self):
        scenario = scenarios.by_name('resize_revert')
        _, row = self.run_scenario(scenario)
        [server] = self.api.get_servers()
        [migration] = self.migrations_of(server['id'])
        self.assertEqual('reverted', migration['status'])
        self.assertEqual({}, self.consumer_allocations(migration['uuid']))
        self.assertEqual(self.api.get_flavors()[0]['name'],
                         server['flavor']['original_name'])

    def test_live_migration_leaves_no_debris(self):
        server = self.crash_live_migration()
        server = self._wait_for_server_parameter(server, {
            'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
            'OS-EXT-SRV-ATTR:host': base.HOST})
        [migration] = self.migrations_of(server['id'])
        self.assertEqual('error', migration['status'])
        self.assertIsNone(self.db_instance(server['id']).migration_context)
        self.assertEqual({}, self.consumer_allocations(migration['uuid']))
        allocations = self._get_allocations_by_server_uuid(server['id'])
        self.assertEqual({self._get_provider_uuid_by_host(base.HOST)},
                         set(allocations))


@_add_tests
class StockCrashRestartDebrisTestCase(_Rows):
    """What stock nova 34 does; recorded, not endorsed."""
    RECOVER = False

    def setUp(self):
        if overlay_fixtures.native():
            self.skipTest('the nova under test carries nova-recover')
        super().setUp()

    def test_shelve_keeps_half_uploaded_image(self):
        self.leave_images_saving()
        server = self.create_server()
        with self.crash_during('snapshot', after=True):
            self.api.post_server_action(server['id'], {'shelve': None})
        self.assertEqual(['saving'],
                         list(self.images_of(server['id']).values()))

    def test_resize_migrating_leaves_debris(self):
        """Bug 1836369, as nova's own test_init_host records it."""
        server, migration, old_flavor = self.crash_resize(
            'migrate_disk_and_power_off')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('migrating', migration['status'])
        self.assertIsNotNone(self.db_instance(server['id']).migration_context)
        self.assertNotEqual({},
                            self.consumer_allocations(migration['uuid']))

    def test_live_migration_leaves_debris(self):
        server = self.crash_live_migration()
        server = self._wait_for_server_parameter(server, {
            'OS-EXT-STS:task_state': None,
            'OS-EXT-SRV-ATTR:host': base.HOST})
        [migration] = self.migrations_of(server['id'])
        self.assertEqual('error', migration['status'])
        # The source's allocations stay with the migration and the
        # instance keeps the destination's.
        self.assertNotEqual({},
                            self.consumer_allocations(migration['uuid']))
        allocations = self._get_allocations_by_server_uuid(server['id'])
        self.assertEqual({self._get_provider_uuid_by_host('host2')},
                         set(allocations))
