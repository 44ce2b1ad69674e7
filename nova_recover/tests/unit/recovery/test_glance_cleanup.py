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
from nova import context as nova_context
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.tests.unit.api.openstack import fakes
from nova.virt import hardware

from nova_recover.startup_recovery import glance_cleanup
from nova_recover.startup_recovery import releases
from nova_recover.tests.unit import base


def _image(image_id, status, instance_uuid=uuids.instance,
           image_type='snapshot', owner=fakes.FAKE_PROJECT_ID):
    properties = {'instance_uuid': instance_uuid}
    if image_type:
        properties['image_type'] = image_type
    return {'id': image_id, 'status': status, 'owner': owner,
            'properties': properties}


class GlanceCleanupTestCase(base.InitInstanceTestCase):

    def setUp(self):
        super().setUp()
        self.image_api = mock.Mock()
        self.compute.image_api = self.image_api
        self.instance = self._instance(task_states.IMAGE_UPLOADING)

    def _cleanup(self, *images):
        self.image_api.get_all.return_value = list(images)
        deleted = glance_cleanup.delete_unfinished_images(
            self.compute, self.context, self.instance)
        self.image_api.get_all.assert_called_once_with(
            self.context, filters={'instance_uuid': self.instance.uuid})
        return deleted

    def test_deletes_queued_and_saving_snapshot_and_backup(self):
        deleted = self._cleanup(_image(uuids.queued, 'queued'),
                                _image(uuids.saving, 'saving',
                                       image_type='backup'))
        self.assertEqual([uuids.queued, uuids.saving], deleted)
        self.image_api.delete.assert_has_calls([
            mock.call(self.context, uuids.queued),
            mock.call(self.context, uuids.saving)])

    def test_keeps_active_images(self):
        """A finished image is user data, whatever the instance's state."""
        self.assertEqual([], self._cleanup(_image(uuids.active, 'active')))
        self.image_api.delete.assert_not_called()

    def test_keeps_other_instances_images(self):
        """Glance may ignore the filter; the helper checks again."""
        deleted = self._cleanup(
            _image(uuids.other, 'queued', instance_uuid=uuids.other_inst))
        self.assertEqual([], deleted)
        self.image_api.delete.assert_not_called()

    def test_keeps_images_nova_did_not_create(self):
        deleted = self._cleanup(_image(uuids.user, 'queued',
                                       image_type=None),
                                _image(uuids.odd, 'saving',
                                       image_type='base'))
        self.assertEqual([], deleted)
        self.image_api.delete.assert_not_called()

    def test_keeps_another_projects_images(self):
        """An image of another project is never deleted.

        Any user can put the instance's uuid and an image_type in the
        properties of an image of their own, and the clean-up, acting
        as an admin, deleted every such unfinished image whatever
        project owned it.
        """
        deleted = self._cleanup(
            _image(uuids.foreign, 'queued', owner=uuids.other_project),
            _image(uuids.ownerless, 'saving', owner=None))
        self.assertEqual([], deleted)
        self.image_api.delete.assert_not_called()

    def test_owner_among_properties_is_read(self):
        """nova's glance fixture puts the owner among the properties."""
        image = _image(uuids.queued, 'queued', owner=None)
        image['properties']['owner'] = fakes.FAKE_PROJECT_ID
        self.assertEqual([uuids.queued], self._cleanup(image))

    def test_list_failure_is_logged_not_raised(self):
        self.image_api.get_all.side_effect = exception.Unauthorized()
        self.assertEqual([], glance_cleanup.delete_unfinished_images(
            self.compute, self.context, self.instance))
        self.image_api.delete.assert_not_called()

    def test_delete_failure_goes_on_with_the_next_image(self):
        self.image_api.delete.side_effect = [
            test.TestingException('glance down'), None]
        deleted = self._cleanup(_image(uuids.first, 'queued'),
                                _image(uuids.second, 'saving'))
        self.assertEqual([uuids.second], deleted)

    def test_already_gone_counts_as_deleted(self):
        self.image_api.delete.side_effect = exception.ImageNotFound(
            image_id=uuids.gone)
        self.assertEqual([uuids.gone],
                         self._cleanup(_image(uuids.gone, 'queued')))


class ImageContextTestCase(test.NoDBTestCase):
    """Start-up's anonymous context reaches glance as the service user."""

    def setUp(self):
        super().setUp()
        self.get_plugin = self.useFixture(test.fixtures.MockPatchObject(
            releases, 'service_auth_plugin',
            return_value=mock.sentinel.service_user)).mock

    def test_anonymous_context_acts_as_the_service_user(self):
        anonymous = nova_context.get_admin_context()
        acting = glance_cleanup.image_context(anonymous)
        self.get_plugin.assert_called_once_with('service_user')
        self.assertIs(mock.sentinel.service_user, acting.get_auth_plugin())
        self.assertTrue(acting.is_admin)
        # The caller's context is not changed.
        self.assertIsNone(anonymous.user_auth_plugin)

    def test_a_user_token_is_kept(self):
        ctxt = nova_context.RequestContext('u', 'p', auth_token='token')
        self.assertIs(ctxt, glance_cleanup.image_context(ctxt))
        self.get_plugin.assert_not_called()

    def test_without_a_service_user_the_context_goes_as_it_is(self):
        self.get_plugin.return_value = None
        anonymous = nova_context.get_admin_context()
        self.assertIs(anonymous, glance_cleanup.image_context(anonymous))

    def test_unloadable_credentials_are_logged_not_raised(self):
        self.get_plugin.side_effect = ValueError('no auth_url')
        anonymous = nova_context.get_admin_context()
        self.assertIs(anonymous, glance_cleanup.image_context(anonymous))

    def test_cleanup_uses_the_service_user(self):
        manager = mock.Mock()
        manager.image_api.get_all.return_value = [
            _image(uuids.image, 'queued')]
        instance = objects.Instance(uuid=uuids.instance,
                                    project_id=fakes.FAKE_PROJECT_ID)
        glance_cleanup.delete_unfinished_images(
            manager, nova_context.get_admin_context(), instance)
        listed_with = manager.image_api.get_all.call_args[0][0]
        deleted_with = manager.image_api.delete.call_args[0][0]
        self.assertIs(mock.sentinel.service_user,
                      listed_with.get_auth_plugin())
        self.assertIs(listed_with, deleted_with)


class ImageRuleCleanupTestCase(base.InitInstanceTestCase):
    """The image rules delete the leftover before clearing the task."""

    def setUp(self):
        super().setUp()
        self.useFixture(test.fixtures.MockPatchObject(
            self.compute.driver, 'get_info',
            return_value=hardware.InstanceInfo(state=power_state.RUNNING)))
        self.image_api = mock.Mock()
        self.compute.image_api = self.image_api
        self.image_api.get_all.return_value = [
            _image(uuids.image, 'saving')]

    def _assert_deleted_before_save(self, task_state):
        instance = self._instance(task_state)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        calls = mock.Mock()
        calls.attach_mock(self.image_api.delete, 'delete')
        with mock.patch.object(instance, 'save') as mock_save:
            calls.attach_mock(mock_save, 'save')
            self.compute._init_instance(self.context, instance)
        self.assertEqual(
            [mock.call.delete(self.context, uuids.image),
             mock.call.save(expected_task_state=task_state)],
            calls.mock_calls)
        self.assertIsNone(instance.task_state)
        self.mock_fault.assert_not_called()

    def test_uploading(self):
        self._assert_deleted_before_save(task_states.IMAGE_UPLOADING)

    def test_pending_upload(self):
        self._assert_deleted_before_save(task_states.IMAGE_PENDING_UPLOAD)

    def test_snapshot_pending(self):
        self._assert_deleted_before_save(task_states.IMAGE_SNAPSHOT_PENDING)

    def test_snapshot(self):
        self._assert_deleted_before_save(task_states.IMAGE_SNAPSHOT)

    def test_glance_failure_still_clears_the_task(self):
        self.image_api.get_all.side_effect = test.TestingException('down')
        instance = self._instance(task_states.IMAGE_UPLOADING)
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo())
        with mock.patch.object(instance, 'save') as mock_save:
            self.compute._init_instance(self.context, instance)
        mock_save.assert_called_once_with(
            expected_task_state=task_states.IMAGE_UPLOADING)
        self.assertIsNone(instance.task_state)
        self.mock_fault.assert_not_called()
