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

from nova.compute import instance_actions
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import objects
from nova import test

from nova_recover.startup_recovery import events
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import host_passes
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery.rules import resize
from nova_recover.startup_recovery.rules import resize_confirm
from nova_recover.tests.unit import base
from nova_recover.tests.unit.recovery import test_evidence

OTHER_HOST = 'other-host'
SOURCE_ALLOCATIONS = {uuids.source_rp: {'resources': {'VCPU': 1}}}


def _flavor(flavor_id, vcpus):
    return objects.Flavor(id=flavor_id, name='flavor%d' % flavor_id,
                          memory_mb=256 * vcpus, vcpus=vcpus, root_gb=1,
                          ephemeral_gb=0, swap=0, flavorid=str(flavor_id),
                          extra_specs={})


class ConfirmRecoveryTestCase(base.InitInstanceTestCase):
    """A confirm that died on this (source) host, at its start-up.

    The server shows no task_state and is on the destination, so
    init_instance never sees it: host_passes.run finds it by its
    'confirming' migration.
    """

    def setUp(self):
        super().setUp()
        # Only this rule's pass: the other's migrations query would count
        # in what the tests assert of this one's.
        self.useFixture(test.fixtures.MockPatchObject(
            order, 'HOST_PASSES', ((resize, resize_confirm.CONFIRMS),)))
        self.migration = objects.Migration(
            id=7, uuid=uuids.migration, instance_uuid=uuids.instance,
            source_compute=self.compute.host, dest_compute=OTHER_HOST,
            status='confirming', migration_type='resize',
            cross_cell_move=False)
        self.mock_list = self.useFixture(test.fixtures.MockPatchObject(
            objects.MigrationList, 'get_by_filters',
            return_value=[self.migration])).mock
        self.mock_get = self.useFixture(test.fixtures.MockPatchObject(
            objects.Instance, 'get_by_uuid')).mock
        self.mock_confirm = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.compute_rpcapi, 'confirm_resize')).mock
        # The base class stubs it out: no database here.
        self.mock_close = events.close_interrupted

    def _resized(self, vm_state=vm_states.RESIZED, task_state=None):
        instance = self._instance(task_state, vm_state=vm_state)
        instance.host = OTHER_HOST
        instance.obj_reset_changes()
        self.mock_get.return_value = instance
        return instance

    def _recover(self, instance):
        with mock.patch.object(instance, 'save') as mock_save:
            host_passes.run(self.compute, self.context)
        mock_save.assert_not_called()

    def _assert_not_confirmed(self, instance):
        self.mock_confirm.assert_not_called()
        self.mock_close.assert_not_called()
        self.assertEqual('confirming', self.migration.status)
        self.assertEqual(vm_states.RESIZED, instance.vm_state)

    def test_confirm_is_cast_again_to_this_host(self):
        instance = self._resized()
        self._recover(instance)
        # One query per start-up, not a read per RESIZED instance.
        self.mock_list.assert_called_once_with(
            self.context, {'source_compute': self.compute.host,
                           'status': 'confirming'})
        self.mock_queued.assert_called_once_with(
            self.compute, self.context, instance,
            operation=evidence.UNSHOWN['confirm_resize'])
        # nova's confirm_resize, as the API casts it, under an action of
        # its own: the resource tracker is not ready during init_host.
        self.mock_confirm.assert_called_once_with(
            mock.ANY, instance, self.migration, self.compute.host)
        rerun = self.mock_confirm.call_args[0][0]
        self.assertNotEqual(self.context.request_id, rerun.request_id)
        self.mock_rerun_action.assert_called_once_with(
            rerun, instance.uuid, 'confirmResize', want_result=False)
        # The interrupted confirm's event is closed; nothing else moves
        # before nova's confirm runs.
        self.mock_close.assert_called_once_with(
            self.compute, self.context, instance, None,
            methods=('confirm_resize',))
        self.assertEqual('confirming', self.migration.status)
        self.assertEqual(vm_states.RESIZED, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.mock_fault.assert_not_called()

    def test_same_host_resize_is_confirmed_too(self):
        self.migration.dest_compute = self.compute.host
        instance = self._resized()
        instance.host = self.compute.host
        self._recover(instance)
        self.mock_confirm.assert_called_once_with(
            mock.ANY, instance, self.migration, self.compute.host)

    def test_confirm_still_queued_is_left_alone(self):
        instance = self._resized()
        self.mock_queued.return_value = True
        self._recover(instance)
        self._assert_not_confirmed(instance)

    def test_unreadable_evidence_is_never_reached(self):
        instance = self._resized()
        self.mock_queued.side_effect = evidence.Unreadable('conductor down')
        self._recover(instance)
        self._assert_not_confirmed(instance)

    def test_not_a_stuck_confirm_is_left_alone(self):
        cases = [
            # The conductor confirms a cross-cell resize.
            dict(cross_cell=True),
            dict(migration_type='live-migration'),
            # A delete confirms the resize itself.
            dict(task_state=task_states.DELETING),
            dict(vm_state=vm_states.ACTIVE),
        ]
        for case in cases:
            self.migration.cross_cell_move = case.get('cross_cell', False)
            self.migration.migration_type = case.get('migration_type',
                                                     'resize')
            instance = self._resized(
                vm_state=case.get('vm_state', vm_states.RESIZED),
                task_state=case.get('task_state'))
            self._recover(instance)
            self.mock_confirm.assert_not_called()
            self.mock_queued.assert_not_called()

    def test_deleted_instance_is_left_alone(self):
        self.mock_get.side_effect = exception.InstanceNotFound(
            instance_id=uuids.instance)
        host_passes.run(self.compute, self.context)
        self.mock_confirm.assert_not_called()

    def test_cast_failing_leaves_the_server_as_it_is(self):
        """A confirm that cannot be cast is no reason to error a server

        whose guest runs: it stays RESIZED, with no fault, and the next
        start-up finds it again.
        """
        instance = self._resized()
        self.mock_confirm.side_effect = test.TestingException('no rabbit')
        self._recover(instance)
        self.mock_fault.assert_not_called()
        self.assertEqual(vm_states.RESIZED, instance.vm_state)
        self.assertEqual('confirming', self.migration.status)

    def test_query_failing_never_leaves_start_up(self):
        self.mock_list.side_effect = test.TestingException('conductor')
        host_passes.run(self.compute, self.context)
        self.mock_get.assert_not_called()

    def test_dry_run_changes_nothing(self):
        self.flags(dry_run=True, group='recover')
        instance = self._resized()
        self._recover(instance)
        self._assert_not_confirmed(instance)


class ConfirmEvidenceTestCase(test_evidence.EvidenceBase):
    """A confirm: cast with no task_state, found by its migration."""

    def test_confirm_without_event_here_may_be_queued(self):
        instance, _ctxt = self._confirming()
        self.assertTrue(self._confirm_queued(instance))

    def test_confirm_event_here_means_reached(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize')
        self.assertFalse(self._confirm_queued(instance))

    def test_confirm_event_elsewhere_proves_nothing(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize', host='other')
        self.assertTrue(self._confirm_queued(instance))

    def test_an_earlier_confirm_proves_nothing(self):
        instance, ctxt = self._confirming()
        self._event(ctxt, instance, 'confirm_resize', finish=True)
        self._request(instance, instance_actions.CONFIRM_RESIZE)
        self.assertTrue(self._confirm_queued(instance))
