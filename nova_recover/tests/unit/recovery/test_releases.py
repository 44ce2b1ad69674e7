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

"""What start-up recovery asks of each nova release it supports."""

from unittest import mock

from nova import service_auth
from nova import test
from nova import utils

from nova_recover.startup_recovery import releases


class SpawnTestCase(test.NoDBTestCase):
    """releases.spawn runs on the default pool of the nova it runs on."""

    def test_spawn_uses_the_release_pool(self):
        work = mock.Mock()
        if releases.thread_pool_factory is not None:
            factory = releases.thread_pool_factory
            with mock.patch.object(factory, 'spawn_on') as spawn_on:
                releases.spawn(work, 1, key=2)
            spawn_on.assert_called_once_with(
                factory.ExecutorType.DEFAULT, work, 1, key=2)
        else:
            with mock.patch.object(utils, 'spawn') as spawn:
                releases.spawn(work, 1, key=2)
            spawn.assert_called_once_with(work, 1, key=2)

    def test_spawn_sees_a_replaced_pool(self):
        """Looked up when called, as nova's own fixtures replace it."""
        target = (releases.thread_pool_factory or utils,
                  'spawn_on' if releases.thread_pool_factory else 'spawn')
        with mock.patch.object(*target) as replaced:
            releases.spawn(mock.sentinel.work)
        replaced.assert_called_once()


class ServiceAuthTestCase(test.NoDBTestCase):
    """The service user's credentials, whichever nova loads them."""

    def test_nova_loads_them_where_it_can(self):
        with mock.patch.object(
                service_auth, 'get_service_auth_plugin', create=True,
                return_value=mock.sentinel.plugin) as load:
            self.assertIs(mock.sentinel.plugin,
                          releases.service_auth_plugin('service_user'))
        load.assert_called_once_with('service_user')

    def test_loaded_from_the_options_where_nova_cannot(self):
        """nova 31 has no get_service_auth_plugin."""
        with mock.patch.object(service_auth, 'get_service_auth_plugin',
                               None, create=True), \
                mock.patch.object(
                    releases.ks_loading, 'load_auth_from_conf_options',
                    return_value=mock.sentinel.plugin) as load:
            self.assertIs(mock.sentinel.plugin,
                          releases.service_auth_plugin('service_user'))
        load.assert_called_once_with(releases.CONF, 'service_user')
