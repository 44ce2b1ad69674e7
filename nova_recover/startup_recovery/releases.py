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

"""What differs between the nova releases start-up recovery runs on.

The package is one source for the overlay and for the patch series of
every release it supports: 2025.1 (nova 31), 2026.1 (nova 33) and
2026.2 (nova 34). Where nova changed an interface between them, the
package asks here instead of naming one release's.

Each function looks nova's name up when it is called, not when this
module is imported: nova's own test fixtures replace those names
(SpawnIsSynchronousFixture patches utils.spawn in nova 31 and 33 and
thread_pool_factory.spawn_on in nova 34), and the package must see the
replacement.
"""

from keystoneauth1 import loading as ks_loading

import nova.conf
from nova import service_auth
from nova import utils

try:
    from nova import thread_pool_factory
except ImportError:
    # nova 31 and 33: utils.spawn runs on nova's default pool.
    thread_pool_factory = None

CONF = nova.conf.CONF


def spawn(func, *args, **kwargs):
    """Run func(*args, **kwargs) on nova's default pool of workers.

    nova 34 has thread_pool_factory and its DEFAULT executor; nova 33
    has utils.spawn on its default executor, and nova 31 utils.spawn on
    eventlet's default green pool. Either way the caller gets nothing it
    must wait for: start-up recovery never waits on what it spawns.
    """
    if thread_pool_factory is not None:
        return thread_pool_factory.spawn_on(
            thread_pool_factory.ExecutorType.DEFAULT, func, *args, **kwargs)
    return utils.spawn(func, *args, **kwargs)


def service_auth_plugin(group):
    """nova's service-user credentials from conf group, as an auth plugin.

    nova 33 and 34 load and cache them in
    service_auth.get_service_auth_plugin; nova 31 only wraps them around
    a user's token (service_auth.get_auth_plugin), so they are loaded
    here from the same options, as nova 33 does.
    """
    load = getattr(service_auth, 'get_service_auth_plugin', None)
    if load is not None:
        return load(group)
    return ks_loading.load_auth_from_conf_options(CONF, group)
