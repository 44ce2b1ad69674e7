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

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.virt import hardware

from nova_recover.startup_recovery import guest_facts
from nova_recover.tests.unit import base

OTHER_HOST = 'other-host'
SOURCE_ALLOCATIONS = {uuids.source_rp: {'resources': {'VCPU': 1}}}


def _flavor(flavor_id, vcpus):
    return objects.Flavor(id=flavor_id, name='flavor%d' % flavor_id,
                          memory_mb=256 * vcpus, vcpus=vcpus, root_gb=1,
                          ephemeral_gb=0, swap=0, flavorid=str(flavor_id),
                          extra_specs={})


class ResizeRecoveryTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        self.mock_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(
                state=power_state.RUNNING))).mock
        self.mock_revert = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'finish_revert_migration')).mock
        self.mock_destroy = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'destroy')).mock
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute, '_get_instance_block_device_info',
            return_value={'block_device_mapping': []}))
        self.reportclient = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, 'reportclient')).mock
        self.reportclient.get_allocations_for_consumer.return_value = (
            SOURCE_ALLOCATIONS)
        self.mock_migration_save = self.useFixture(
            test.fixtures.MockPatchObject(objects.Migration, 'save')).mock
        self.mock_get_migration = self.useFixture(
            test.fixtures.MockPatchObject(
                objects.Migration, 'get_by_id_and_instance')).mock
        self.mock_list_migrations = self.useFixture(
            test.fixtures.MockPatchObject(
                objects.MigrationList, 'get_by_filters',
                return_value=[])).mock
        self.old_flavor = _flavor(11, 1)
        self.new_flavor = _flavor(12, 2)

    def _migration(self, status='migrating', source=None, dest=None):
        migration = objects.Migration(
            id=7, uuid=uuids.migration, instance_uuid=uuids.instance,
            source_compute=source or self.compute.host,
            dest_compute=dest or self.compute.host,
            source_node='node', dest_node='node', status=status,
            migration_type='resize')
        self.mock_get_migration.return_value = migration
        return migration

    def _instance(self, task_state, vm_state=vm_states.ACTIVE,
                  old_vm_state=vm_states.ACTIVE, with_context=True,
                  moved=False):
        instance = super()._instance(
            task_state, vm_state=vm_state, node='node',
            system_metadata={'old_vm_state': old_vm_state},
            expected_attrs=['system_metadata'],
            flavor=self.new_flavor if moved else self.old_flavor)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        instance.old_flavor = self.old_flavor
        instance.new_flavor = self.new_flavor
        if with_context:
            instance.migration_context = objects.MigrationContext(
                migration_id=7, instance_uuid=instance.uuid)
        instance.obj_reset_changes()
        return instance

    def _recover(self, instance):
        with test.nested(
            mock.patch.object(instance, 'save'),
            mock.patch.object(instance, 'drop_migration_context'),
            mock.patch.object(instance, 'revert_migration_context'),
        ) as (mock_save, mock_drop, mock_revert_ctx):
            self.compute._init_instance(self.context, instance)
        return mock_save, mock_drop, mock_revert_ctx

    def _assert_reverted(self, instance, task_state, migration, status,
                         vm_state=vm_states.ACTIVE):
        mock_save, mock_drop, mock_revert_ctx = self._recover(instance)
        mock_save.assert_called_once_with(expected_task_state=task_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.assertEqual(status, migration.status)
        self.mock_migration_save.assert_called_once_with()
        self.reportclient.move_allocations.assert_called_once_with(
            self.context, uuids.migration, instance.uuid)
        mock_revert_ctx.assert_called_once_with()
        mock_drop.assert_called_once_with()
        self.assertIsNone(instance.old_flavor)
        self.assertIsNone(instance.new_flavor)
        self.assertNotIn('old_vm_state', instance.system_metadata)
        self.assertEqual(self.old_flavor.id, instance.instance_type_id)
        self.mock_fault.assert_not_called()

    def test_migrating_on_source_reverts(self):
        migration = self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATING,
                              migration, 'error')
        # Stock nova's revert of the old guest, kept.
        self.mock_revert.assert_called_once_with(
            self.context, instance, mock.ANY, migration,
            {'block_device_mapping': []}, True)
        self.mock_destroy.assert_not_called()
        # CONTINUE: nova's own path plugs the VIFs of the old guest.
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_migrating_stopped_instance_stays_stopped(self):
        self.mock_info.return_value = hardware.InstanceInfo(
            state=power_state.SHUTDOWN)
        migration = self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING,
                                  vm_state=vm_states.STOPPED,
                                  old_vm_state=vm_states.STOPPED)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATING,
                              migration, 'error', vm_state=vm_states.STOPPED)
        self.assertFalse(self.mock_revert.call_args[0][5])

    def _disk_moved(self, moved):
        facts = guest_facts.UnknownGuestFacts()
        self.useFixture(test.fixtures.MockPatchObject(
            facts, 'resize_disk_moved', return_value=moved))
        self.useFixture(test.fixtures.MockPatchObject(
            guest_facts, 'for_driver', return_value=facts))

    def test_migrating_running_guest_never_moved_is_kept(self):
        """Died before migrate_disk_and_power_off touched the guest."""
        self._disk_moved(False)
        migration = self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATING,
                              migration, 'error')
        self.mock_revert.assert_not_called()
        self.assertEqual(power_state.RUNNING, instance.power_state)
        self.mock_plug.assert_called_once_with(instance, mock.ANY)

    def test_migrating_running_guest_with_moved_disk_is_reverted(self):
        self._disk_moved(True)
        migration = self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATING,
                              migration, 'error')
        self.mock_revert.assert_called_once()

    def test_migrating_guest_off_is_reverted(self):
        self._disk_moved(False)
        self.mock_info.return_value = hardware.InstanceInfo(
            state=power_state.SHUTDOWN)
        migration = self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATING,
                              migration, 'error', vm_state=vm_states.STOPPED)
        self.mock_revert.assert_called_once()

    def test_migrating_without_old_flavor_reverts_with_the_flavor(self):
        """resize_instance records old_flavor after the driver's step."""
        self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        instance.old_flavor = None
        instance.obj_reset_changes()
        seen = []
        self.mock_revert.side_effect = (
            lambda context, instance, *args: seen.append(
                instance.old_flavor))
        self._recover(instance)
        self.assertEqual([self.old_flavor], seen)
        self.assertIsNone(instance.old_flavor)

    def test_migrating_error_instance(self):
        """Stock nova also handles ERROR+RESIZE_MIGRATING; so does this."""
        migration = self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING,
                                  vm_state=vm_states.ERROR)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATING,
                              migration, 'error')

    def test_prep_finds_migration_without_context(self):
        migration = self._migration(status='pre-migrating', dest=OTHER_HOST)
        done = objects.Migration(id=3, status='confirmed',
                                 migration_type='resize')
        live = objects.Migration(id=9, status='running',
                                 migration_type='live-migration')
        self.mock_list_migrations.return_value = [done, migration, live]
        instance = self._instance(task_states.RESIZE_PREP,
                                  with_context=False)
        mock_save, mock_drop, _ = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.RESIZE_PREP)
        self.mock_list_migrations.assert_called_once_with(
            self.context, {'instance_uuid': instance.uuid})
        self.assertEqual('error', migration.status)
        self.reportclient.move_allocations.assert_called_once_with(
            self.context, uuids.migration, instance.uuid)
        # The old guest was never touched.
        self.mock_revert.assert_not_called()
        mock_drop.assert_not_called()
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)

    def test_prep_without_migration_only_clears_task(self):
        instance = self._instance(task_states.RESIZE_PREP,
                                  with_context=False)
        mock_save, _, _ = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.RESIZE_PREP)
        self.assertIsNone(instance.task_state)
        self.reportclient.move_allocations.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_no_allocations_on_migration_moves_nothing(self):
        self.reportclient.get_allocations_for_consumer.return_value = {}
        self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        self._recover(instance)
        self.reportclient.move_allocations.assert_not_called()
        self.assertIsNone(instance.task_state)

    def test_same_host_migrated_reverts_flavor(self):
        migration = self._migration(status='post-migrating')
        instance = self._instance(task_states.RESIZE_MIGRATED, moved=True)
        self._assert_reverted(instance, task_states.RESIZE_MIGRATED,
                              migration, 'error')
        self.mock_destroy.assert_not_called()
        self.mock_revert.assert_called_once()

    def test_same_host_finish_destroys_new_guest_keeping_disks(self):
        migration = self._migration(status='post-migrating')
        instance = self._instance(task_states.RESIZE_FINISH, moved=True)
        calls = mock.Mock()
        calls.attach_mock(self.mock_destroy, 'destroy')
        calls.attach_mock(self.mock_revert, 'finish_revert_migration')
        self._assert_reverted(instance, task_states.RESIZE_FINISH,
                              migration, 'error')
        self.assertEqual(['destroy', 'finish_revert_migration'],
                         [c[0] for c in calls.mock_calls])
        self.mock_destroy.assert_called_once_with(
            self.context, instance, mock.ANY, {'block_device_mapping': []},
            destroy_disks=False)

    def test_same_host_reverting_ends_reverted(self):
        migration = self._migration(status='reverting')
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED, moved=True)
        self._assert_reverted(instance, task_states.RESIZE_REVERTING,
                              migration, 'reverted')
        self.mock_destroy.assert_called_once()

    def test_reverting_on_source_after_host_flip(self):
        """finish_revert_resize already put the instance back here."""
        migration = self._migration(status='reverting', dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        self._assert_reverted(instance, task_states.RESIZE_REVERTING,
                              migration, 'reverted')
        # The new guest is on the other host, not here.
        self.mock_destroy.assert_not_called()
        self.mock_revert.assert_called_once()

    def _assert_handed_to_source(self, task_state,
                                 vm_state=vm_states.ACTIVE):
        """The revert goes back to the source, as the API's revert sends

        it: revert_resize is cast to this host, whose RPC server runs it
        once start-up is over (it destroys the new guest here and casts
        finish_revert_resize to the source). Before, the server went to
        ERROR, from which its owner can neither revert nor confirm.
        """
        migration = self._migration(status='post-migrating',
                                    source=OTHER_HOST)
        instance = self._instance(task_state, vm_state=vm_state, moved=True)
        with mock.patch.object(self.compute, 'compute_rpcapi') as rpcapi:
            mock_save, mock_drop, _ = self._recover(instance)
        if task_state == task_states.RESIZE_REVERTING:
            mock_save.assert_not_called()
        else:
            mock_save.assert_called_once_with(expected_task_state=task_state)
        # Where the API's revert puts them, until the source finishes.
        self.assertEqual(task_states.RESIZE_REVERTING, instance.task_state)
        self.assertEqual(vm_state, instance.vm_state)
        self.assertEqual('reverting', migration.status)
        self.mock_migration_save.assert_called_once_with()
        # Under a revertResize action of its own.
        self.mock_rerun_action.assert_called_once_with(
            mock.ANY, instance.uuid, 'revertResize', want_result=False)
        rpcapi.revert_resize.assert_called_once_with(
            mock.ANY, instance, migration, self.compute.host, None)
        self.assertEqual(self.mock_rerun_action.call_args[0][0],
                         rpcapi.revert_resize.call_args[0][0])
        # Nothing of the guests changes during start-up.
        self.mock_destroy.assert_not_called()
        self.mock_revert.assert_not_called()
        self.reportclient.move_allocations.assert_not_called()
        mock_drop.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_migrated_on_destination_goes_back_to_source(self):
        self._assert_handed_to_source(task_states.RESIZE_MIGRATED)

    def test_finish_on_destination_goes_back_to_source(self):
        self._assert_handed_to_source(task_states.RESIZE_FINISH)

    def test_reverting_on_destination_goes_back_to_source(self):
        self._assert_handed_to_source(task_states.RESIZE_REVERTING,
                                      vm_state=vm_states.RESIZED)

    def test_destination_without_old_flavor_errors(self):
        self._migration(status='post-migrating', source=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_FINISH, moved=True)
        instance.old_flavor = None
        instance.obj_reset_changes()
        with mock.patch.object(self.compute, 'compute_rpcapi') as rpcapi:
            self._recover(instance)
        rpcapi.revert_resize.assert_not_called()
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'the flavor to revert to is not '
                                   'recorded')

    def test_no_migration_record_errors(self):
        self.mock_get_migration.side_effect = exception.MigrationNotFound(
            migration_id=7)
        instance = self._instance(task_states.RESIZE_FINISH, moved=True)
        self._recover(instance)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'resize interrupted by nova-compute '
                                   'restart: no migration record found')

    def test_driver_revert_failure_errors_migration_and_instance(self):
        migration = self._migration(dest=OTHER_HOST)
        self.mock_revert.side_effect = test.TestingException('disk busy')
        instance = self._instance(task_states.RESIZE_MIGRATING)
        mock_save, mock_drop, _ = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.RESIZE_MIGRATING])
        self.assertEqual('error', migration.status)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'resize interrupted by nova-compute '
                                   'restart: disk busy')
        mock_drop.assert_not_called()

    def test_confirming_keeps_resized_instance(self):
        migration = objects.Migration(id=7, status='confirming')
        instance = self._instance(task_states.RESIZE_CONFIRMING,
                                  vm_state=vm_states.RESIZED, moved=True)
        with mock.patch.object(objects.Migration,
                               'get_by_instance_and_status',
                               return_value=migration) as mock_get:
            mock_save, _, _ = self._recover(instance)
        mock_get.assert_called_once_with(self.context, instance.uuid,
                                         'confirming')
        mock_save.assert_called_once_with(
            expected_task_state=task_states.RESIZE_CONFIRMING)
        self.assertEqual(vm_states.RESIZED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        # The API confirms a 'finished' migration only.
        self.assertEqual('finished', migration.status)
        self.mock_revert.assert_not_called()

    def test_lost_race_raises_nothing(self):
        self._migration(dest=OTHER_HOST)
        instance = self._instance(task_states.RESIZE_MIGRATING)
        with test.nested(
            mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid,
                    expected='resize_migrating', actual='deleting')),
            mock.patch.object(instance, 'drop_migration_context'),
        ) as (mock_save, _drop):
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.RESIZE_MIGRATING)
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()
