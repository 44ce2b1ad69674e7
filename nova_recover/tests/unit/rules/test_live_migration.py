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

from nova_recover.tests.unit import base

SOURCE_ALLOCATIONS = {uuids.source_rp: {'resources': {'VCPU': 1}}}


class LiveMigrationRecoveryTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        self.mock_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(
                state=power_state.RUNNING))).mock
        self.mock_abort = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, 'live_migration_abort')).mock
        self.reportclient = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, 'reportclient')).mock
        self.reportclient.get_allocations_for_consumer.return_value = (
            SOURCE_ALLOCATIONS)
        self.mock_migration_save = self.useFixture(
            test.fixtures.MockPatchObject(objects.Migration, 'save')).mock
        self.mock_by_status = self.useFixture(test.fixtures.MockPatchObject(
            objects.Migration, 'get_by_instance_and_status')).mock
        self.mock_list = self.useFixture(test.fixtures.MockPatchObject(
            objects.MigrationList, 'get_by_filters')).mock

    def _migration(self, status):
        migration = objects.Migration(
            id=5, uuid=uuids.migration, instance_uuid=uuids.instance,
            source_compute=self.compute.host, dest_compute='dest-host',
            status=status, migration_type='live-migration')
        finished = objects.Migration(id=2, uuid=uuids.old, status='completed',
                                     migration_type='live-migration')
        resize = objects.Migration(id=3, uuid=uuids.resize, status='error',
                                   migration_type='resize')
        self.mock_list.return_value = [finished, resize, migration]
        if status == 'running':
            self.mock_by_status.return_value = migration
        else:
            self.mock_by_status.side_effect = (
                exception.MigrationNotFoundByStatus(
                    instance_id=uuids.instance, status='running'))
        return migration

    def _instance(self, *args, **kwargs):
        instance = super()._instance(task_states.MIGRATING, *args, **kwargs)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        instance.migration_context = objects.MigrationContext(
            migration_id=5, instance_uuid=instance.uuid)
        instance.obj_reset_changes()
        return instance

    def _recover(self, instance):
        with test.nested(
            mock.patch.object(instance, 'save'),
            mock.patch.object(instance, 'drop_migration_context'),
        ) as (mock_save, mock_drop):
            self.compute._init_instance(self.context, instance)
        return mock_save, mock_drop

    def _assert_reset(self, status):
        migration = self._migration(status)
        instance = self._instance()
        mock_save, mock_drop = self._recover(instance)
        # nova's own reset, with its compare-and-swap.
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.MIGRATING])
        self.assertIsNone(instance.task_state)
        self.assertEqual(vm_states.ACTIVE, instance.vm_state)
        self.assertEqual('error', migration.status)
        self.mock_list.assert_called_once_with(
            self.context, {'instance_uuid': instance.uuid})
        self.reportclient.move_allocations.assert_called_once_with(
            self.context, uuids.migration, instance.uuid)
        mock_drop.assert_called_once_with()
        self.mock_plug.assert_called_once_with(instance, mock.ANY)
        self.mock_fault.assert_not_called()
        return instance

    def test_running_migration_aborted_and_cleaned_up(self):
        instance = self._assert_reset('running')
        self.mock_abort.assert_called_once_with(self.context, instance, 5)

    def test_preparing_migration_not_left_behind(self):
        """Stock nova resets only a running migration."""
        self._assert_reset('preparing')
        self.mock_abort.assert_not_called()

    def test_post_migrating_migration_not_left_behind(self):
        self._assert_reset('post-migrating')

    def test_guest_paused_for_switch_over_recorded_paused(self):
        """Not resumed: it may already run on the destination."""
        self._migration('running')
        self.mock_info.return_value = hardware.InstanceInfo(
            state=power_state.PAUSED)
        instance = self._instance()
        mock_save, _drop = self._recover(instance)
        mock_save.assert_has_calls([
            mock.call(expected_task_state=[task_states.MIGRATING]),
            mock.call(expected_task_state=None)])
        self.assertEqual(vm_states.PAUSED, instance.vm_state)
        self.assertEqual(power_state.PAUSED, instance.power_state)

    def test_without_migration_record_only_resets(self):
        self.mock_list.return_value = []
        self.mock_by_status.side_effect = exception.MigrationNotFoundByStatus(
            instance_id=uuids.instance, status='running')
        instance = self._instance()
        instance.migration_context = None
        mock_save, mock_drop = self._recover(instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.MIGRATING])
        self.reportclient.move_allocations.assert_not_called()
        self.mock_migration_save.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_guest_gone_errors_naming_destination(self):
        self.mock_info.side_effect = exception.InstanceNotFound(
            instance_id=uuids.instance)
        migration = self._migration('running')
        instance = self._instance()
        mock_save, mock_drop = self._recover(instance)
        self.assertEqual(
            [mock.call(expected_task_state=[task_states.MIGRATING]),
             mock.call(expected_task_state=None)],
            mock_save.call_args_list)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertEqual('error', migration.status)
        self.assertFault(instance, 'live migration interrupted by '
                                   'nova-compute restart: the guest is not '
                                   'on this host; it may run on dest-host')
        # The guest may run on the destination: its allocations stay.
        self.reportclient.move_allocations.assert_not_called()
        mock_drop.assert_not_called()
        self.mock_plug.assert_not_called()

    def test_lost_race_raises_nothing(self):
        self._migration('running')
        instance = self._instance()
        with test.nested(
            mock.patch.object(
                instance, 'save',
                side_effect=exception.UnexpectedTaskStateError(
                    instance_uuid=instance.uuid, expected='migrating',
                    actual='deleting')),
            mock.patch.object(instance, 'drop_migration_context'),
        ) as (mock_save, mock_drop):
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.MIGRATING])
        self.reportclient.move_allocations.assert_not_called()
        mock_drop.assert_not_called()
        self.mock_plug.assert_not_called()
        self.mock_fault.assert_not_called()

    def test_allocation_failure_errors_with_fault(self):
        self._migration('running')
        self.reportclient.move_allocations.side_effect = (
            exception.AllocationMoveFailed(
                source_consumer=uuids.migration,
                target_consumer=uuids.instance, error='conflict'))
        instance = self._instance()
        mock_save, mock_drop = self._recover(instance)
        second = mock_save.call_args_list[1]
        self.assertEqual({task_states.MIGRATING, None},
                         set(second[1]['expected_task_state']))
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'live migration interrupted by '
                                   'nova-compute restart')
