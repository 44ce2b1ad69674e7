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

import os
import sys

# The tests run in whichever concurrency mode the environment asks for
# (CI runs both). Unset, they run as nova 34's nova-compute does, on native
# threading: that is where the overlay runs in production, and eventlet
# mode is deprecated. nova's monkey_patch.patch() defaults to eventlet, and
# the choice is made once per process, before any other nova import.
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', 'True')
# The nova wheel installs api-paste.ini under the venv's etc/nova/, not
# where nova's conf fixture looks for it; oslo.config reads this variable
# over the fixture's default.
os.environ.setdefault('OS_WSGI__API_PASTE_CONFIG',
                      os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini'))

from nova import monkey_patch; monkey_patch.patch()  # noqa: E402,E702
from nova import objects  # noqa: E402

objects.register_all()

# The recovery package reads [recover] and leaves registering it to its
# host: nova/conf in patched nova, the overlay's install otherwise. Tests
# use the package without installing the overlay too.
import nova.conf  # noqa: E402

from nova_recover import conf as recover_conf  # noqa: E402

recover_conf.register_opts(nova.conf.CONF)
