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

"""A compute with glance and a guest, for the shelve family's tests."""

from unittest import mock

from oslo_utils.fixture import uuidsentinel as uuids

from nova.compute import power_state
from nova.compute import utils as compute_utils
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.virt import hardware

from nova_recover.tests.unit import base

SHELVED_KEYS = {'shelved_at': '2026-01-01T00:00:00',
                'shelved_image_id': uuids.shelved_image,
                'shelved_host': 'fake-mini'}


class ShelveTestCase(base.InitInstanceTestCase):
    """What the shelve, offload and unshelve tests share; no test."""

    def setUp(self):
        super().setUp()
        # The engine's evidence reads the database; these requests reached
        # the host.
        self.mock_info = self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info')).mock
        self.image_api = mock.Mock()
        self.image_api.get_all.return_value = [
            {'id': uuids.half_image, 'status': 'saving',
             'owner': self.context.project_id,
             'properties': {'instance_uuid': uuids.instance,
                            'image_type': 'snapshot'}}]
        self.compute.image_api = self.image_api
        self.mock_volume_backed = self.useFixture(
            test.fixtures.MockPatchObject(
                compute_utils, 'is_volume_backed_instance',
                return_value=False)).mock
        self.mock_offload = self.useFixture(test.fixtures.MockPatchObject(
            self.compute, '_shelve_offload_instance')).mock

    def _guest(self, state):
        if state == power_state.NOSTATE:
            self.mock_info.side_effect = exception.InstanceNotFound(
                instance_id=uuids.instance)
        else:
            self.mock_info.return_value = hardware.InstanceInfo(state=state)

    def _instance(self, *args, **kwargs):
        kwargs.setdefault('system_metadata', {})
        kwargs.setdefault('expected_attrs', ['system_metadata'])
        instance = super()._instance(*args, **kwargs)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        instance.obj_reset_changes()
        return instance

    def _recover(self, instance):
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        return mock_save
