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

from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import objects
from nova import test

from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import host_passes
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery.rules import evacuation
from nova_recover.startup_recovery.rules import rebuild
from nova_recover.tests.unit import base

SOURCE = 'source-host'


class EvacuationRecoveryTestCase(base.InitInstanceTestCase):
    """An evacuation to this host that died here, at this host's start-up.

    The instance still names the source, so init_instance never sees it:
    host_passes.run finds it by its migration.
    """

    def setUp(self):
        super().setUp()
        # Only this rule's pass: the other's migrations query would count
        # in what the tests assert of this one's.
        self.useFixture(test.fixtures.MockPatchObject(
            order, 'HOST_PASSES', ((rebuild, evacuation.EVACUATIONS),)))
        self.migration = objects.Migration(
            id=7, uuid=uuids.migration, instance_uuid=uuids.instance,
            source_compute=SOURCE, source_node=SOURCE,
            dest_compute=self.compute.host, dest_node='dest-node',
            status='pre-migrating', migration_type='evacuation')
        self.mock_list = self.useFixture(test.fixtures.MockPatchObject(
            objects.MigrationList, 'get_by_filters',
            return_value=[self.migration])).mock
        self.mock_get = self.useFixture(test.fixtures.MockPatchObject(
            objects.Instance, 'get_by_uuid')).mock
        self.mock_migration_save = self.useFixture(
            test.fixtures.MockPatchObject(objects.Migration, 'save')).mock
        self.mock_exists = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'instance_exists',
            return_value=True)).mock
        self.mock_destroy = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'destroy')).mock
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute, '_get_instance_block_device_info',
            return_value={'block_device_mapping': []}))
        self.reportclient = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, 'reportclient')).mock
        self.mock_node = self.useFixture(test.fixtures.MockPatchObject(
            objects.ComputeNode, 'get_by_host_and_nodename',
            return_value=objects.ComputeNode(uuid=uuids.dest_node))).mock
        self.mock_nodes = self.useFixture(test.fixtures.MockPatchObject(
            objects.ComputeNodeList, 'get_all_by_host',
            return_value=[objects.ComputeNode(uuid=uuids.node_a),
                          objects.ComputeNode(uuid=uuids.node_b)])).mock

    def _evacuating(self, task_state=task_states.REBUILD_SPAWNING,
                    vm_state=vm_states.ACTIVE, migration_id=7,
                    host=SOURCE):
        instance = self._instance(task_state, vm_state=vm_state)
        instance.host = host
        instance.migration_context = (
            None if migration_id is None else objects.MigrationContext(
                migration_id=migration_id, instance_uuid=instance.uuid))
        instance.obj_reset_changes()
        self.mock_get.return_value = instance
        return instance

    def _recover(self, instance, save_error=None):
        with test.nested(
            mock.patch.object(instance, 'save', side_effect=save_error),
            mock.patch.object(instance, 'drop_migration_context'),
        ) as (mock_save, mock_drop):
            host_passes.run(self.compute, self.context)
        return mock_save, mock_drop

    def _assert_untouched(self, instance, mock_save):
        mock_save.assert_not_called()
        self.mock_migration_save.assert_not_called()
        self.mock_destroy.assert_not_called()
        self.reportclient.remove_provider_tree_from_instance_allocation.\
            assert_not_called()
        self.mock_fault.assert_not_called()

    def test_interrupted_evacuation_ends_failed_in_error(self):
        instance = self._evacuating()
        mock_save, mock_drop = self._recover(instance)
        # One query for the host: nova's filters have no dest_compute.
        self.mock_list.assert_called_once_with(
            self.context, {'host': self.compute.host,
                           'migration_type': 'evacuation',
                           'status': ['accepted', 'pre-migrating']})
        self.assertEqual('failed', self.migration.status)
        self.mock_migration_save.assert_called_once_with()
        # The half-spawned guest here goes, its disks stay (shared
        # storage would hold the user's disk).
        self.mock_destroy.assert_called_once_with(
            self.context, instance, mock.ANY, {'block_device_mapping': []},
            destroy_disks=False)
        self.mock_node.assert_called_once_with(
            self.context, self.compute.host, 'dest-node')
        self.reportclient.remove_provider_tree_from_instance_allocation.\
            assert_called_once_with(self.context, instance.uuid,
                                    uuids.dest_node)
        mock_drop.assert_called_once_with()
        mock_save.assert_called_once_with(
            expected_task_state=task_states.REBUILD_SPAWNING)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertEqual(SOURCE, instance.host)
        self.assertFault(instance, 'Evacuation to %s interrupted by a '
                         'nova-compute restart; the server can be '
                         'evacuated again' % self.compute.host)
        # The evidence was asked for the task_state's request.
        self.mock_queued.assert_called_once_with(
            self.compute, self.context, instance, operation=None)

    def test_migration_fails_before_anything_is_destroyed(self):
        """The source must never take the evacuation as done."""
        instance = self._evacuating()
        order = mock.Mock()
        self.mock_migration_save.side_effect = (
            lambda: order.save(self.migration.status))
        self.mock_destroy.side_effect = lambda *a, **k: order.destroy()
        self._recover(instance)
        self.assertEqual([mock.call.save('failed'), mock.call.destroy()],
                         order.mock_calls)

    def test_no_guest_here_destroys_nothing(self):
        instance = self._evacuating()
        self.mock_exists.return_value = False
        self._recover(instance)
        self.mock_destroy.assert_not_called()
        self.assertEqual(vm_states.ERROR, instance.vm_state)

    def test_died_before_the_claim_frees_every_node_of_the_host(self):
        self.migration.dest_node = None
        self.migration.status = 'accepted'
        instance = self._evacuating(task_states.REBUILDING,
                                    vm_state=vm_states.STOPPED,
                                    migration_id=None)
        mock_save, mock_drop = self._recover(instance)
        self.mock_nodes.assert_called_once_with(self.context,
                                                self.compute.host)
        remove = (self.reportclient.
                  remove_provider_tree_from_instance_allocation)
        self.assertEqual(
            [mock.call(self.context, instance.uuid, uuids.node_a),
             mock.call(self.context, instance.uuid, uuids.node_b)],
            remove.call_args_list)
        mock_drop.assert_not_called()
        self.assertEqual('failed', self.migration.status)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.REBUILDING)
        self.assertEqual(vm_states.ERROR, instance.vm_state)

    def test_request_still_queued_is_left_alone(self):
        instance = self._evacuating(task_states.REBUILDING)
        self.mock_queued.return_value = True
        mock_save, _drop = self._recover(instance)
        self._assert_untouched(instance, mock_save)
        self.assertEqual(task_states.REBUILDING, instance.task_state)
        self.assertEqual('pre-migrating', self.migration.status)

    def test_unreadable_evidence_is_never_reached(self):
        instance = self._evacuating(task_states.REBUILDING)
        self.mock_queued.side_effect = evidence.Unreadable('conductor down')
        mock_save, _drop = self._recover(instance)
        self._assert_untouched(instance, mock_save)

    def test_not_ours_is_left_alone(self):
        cases = [
            # An evacuation from this host, not to it.
            dict(dest=SOURCE),
            # The evacuation got as far as moving the instance here.
            dict(host='this'),
            # No rebuild runs any more.
            dict(task_state=None),
            # A newer move owns the instance.
            dict(migration_id=8),
        ]
        for case in cases:
            self.migration.dest_compute = case.get('dest', self.compute.host)
            instance = self._evacuating(
                task_state=case.get('task_state',
                                    task_states.REBUILD_SPAWNING),
                migration_id=case.get('migration_id', 7),
                host=(self.compute.host if case.get('host') else SOURCE))
            mock_save, _drop = self._recover(instance)
            self._assert_untouched(instance, mock_save)

    def test_deleted_instance_is_left_alone(self):
        self.mock_get.side_effect = exception.InstanceNotFound(
            instance_id=uuids.instance)
        host_passes.run(self.compute, self.context)
        self.mock_migration_save.assert_not_called()
        self.mock_destroy.assert_not_called()

    def test_lost_race_records_no_fault(self):
        instance = self._evacuating()
        self._recover(instance, save_error=exception.UnexpectedTaskStateError(
            instance_uuid=instance.uuid, expected='rebuild_spawning',
            actual='deleting'))
        self.mock_fault.assert_not_called()
        # What protects the source's guest stays done.
        self.assertEqual('failed', self.migration.status)

    def test_failing_step_errors_with_the_rebuild_fault(self):
        instance = self._evacuating()
        self.mock_destroy.side_effect = test.TestingException('boom')
        mock_save, _drop = self._recover(instance)
        self.assertEqual('failed', self.migration.status)
        mock_save.assert_called_once_with(
            expected_task_state=[task_states.REBUILD_SPAWNING])
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertFault(instance, 'rebuild interrupted by nova-compute '
                         'restart: boom')

    def test_query_failing_never_leaves_start_up(self):
        self.mock_list.side_effect = test.TestingException('conductor')
        host_passes.run(self.compute, self.context)
        self.mock_get.assert_not_called()

    def test_dry_run_changes_nothing(self):
        self.flags(dry_run=True, group='recover')
        instance = self._evacuating()
        mock_save, _drop = self._recover(instance)
        self._assert_untouched(instance, mock_save)

    def test_disabled_rule_changes_nothing(self):
        self.flags(disabled_rules=['rebuild'], group='recover')
        instance = self._evacuating()
        mock_save, _drop = self._recover(instance)
        self._assert_untouched(instance, mock_save)
