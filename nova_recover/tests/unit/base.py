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

import fixtures
from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import manager
from nova.compute import power_state
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import context
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.unit.api.openstack import fakes
from nova.tests.unit import fake_instance

from nova_recover.startup_recovery import events
from nova_recover.startup_recovery import evidence
from nova_recover.tests import overlay_fixtures


def share_info_patch(compute):
    """Patch where the compute manager reads an instance's shares.

    Re-running a reboot or a resume reads them. nova 34 moved that to
    ComputeManager.share_manager (nova/compute/share_management.py);
    nova 31 and 33 read them in ComputeManager._get_share_info.
    """
    shares = getattr(compute, 'share_manager', None)
    if shares is not None:
        return mock.patch.object(shares, 'get_share_info')
    return mock.patch.object(compute, '_get_share_info')


class InitInstanceTestCase(test.NoDBTestCase):
    """A real ComputeManager, the fake driver and the overlay installed.

    Tests drive ComputeManager._init_instance, as nova-compute start-up
    does, so the same test holds for the overlay and the patch series.
    """

    REQUIRES_LOCKING = True

    def setUp(self):
        super().setUp()
        self.useFixture(overlay_fixtures.Overlay())
        self.compute = manager.ComputeManager()
        self.context = context.RequestContext(fakes.FAKE_USER_ID,
                                              fakes.FAKE_PROJECT_ID)
        self.useFixture(nova_fixtures.SpawnIsSynchronousFixture())
        self.useFixture(nova_fixtures.EventReporterStub())
        self.mock_fault = self.useFixture(fixtures.MockPatchObject(
            compute_utils, 'add_instance_fault_from_exc')).mock
        # Every operation reached this host and died: evidence.py reads
        # that from instance actions, which a test without a database has
        # none of. Tests of the queued case patch it again.
        self.mock_queued = self.useFixture(fixtures.MockPatchObject(
            evidence, 'queued', return_value=False)).mock
        self.mock_close = self.useFixture(fixtures.MockPatchObject(
            events, 'close_interrupted', return_value=0)).mock
        self.mock_note_lost = self.useFixture(fixtures.MockPatchObject(
            events, 'note_lost', return_value=True)).mock
        self.mock_note_snapshot = self.useFixture(fixtures.MockPatchObject(
            events, 'note_snapshot_interrupted', return_value=True)).mock
        self.mock_plug = self.useFixture(fixtures.MockPatchObject(
            self.compute.driver, 'plug_vifs')).mock
        # A re-run records an instance action of its own.
        self.mock_rerun_action = self.useFixture(fixtures.MockPatchObject(
            objects.InstanceAction, 'action_start')).mock

    def _instance(self, task_state, vm_state=vm_states.ACTIVE,
                  power=power_state.RUNNING, **kwargs):
        kwargs.setdefault('uuid', uuids.instance)
        instance = fake_instance.fake_instance_obj(
            self.context, project_id=fakes.FAKE_PROJECT_ID,
            host=self.compute.host, task_state=task_state,
            vm_state=vm_state, power_state=power, **kwargs)
        # nova's own start-up path reads it to plug the VIFs.
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        instance.obj_reset_changes()
        return instance

    def assertFault(self, instance, text):
        """The instance fault recorded for the instance names text."""
        self.mock_fault.assert_called_once_with(
            self.context, instance, mock.ANY)
        self.assertIn(text, str(self.mock_fault.call_args[0][2]))

    def assertRerun(self, method, instance, action, **kwargs):
        """method ran once for instance, under a new action named action."""
        method.assert_called_once_with(mock.ANY, instance, **kwargs)
        rerun = method.call_args[0][0]
        self.assertNotEqual(self.context.request_id, rerun.request_id)
        self.mock_rerun_action.assert_called_once_with(
            rerun, instance.uuid, action, want_result=False)
