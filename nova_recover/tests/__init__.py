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

from importlib import metadata
import os
import sys

# The tests run in whichever concurrency mode the environment asks for
# (CI runs each mode the release's nova-compute supports). Unset, they
# run as that release's nova-compute does by default: on native
# threading from nova 34, where eventlet is deprecated, and on eventlet
# before (nova 33 has threading as an experiment, nova 31 none). nova
# chooses once per process, before any other nova import, so the version
# is read from the installed distribution, not from nova itself. The
# tests ask NOVA_MAJOR where a release differs.
NOVA_VERSION = metadata.version('nova')
NOVA_MAJOR = int(NOVA_VERSION.split('.')[0])
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING',
                      'True' if NOVA_MAJOR >= 34 else 'False')
# The nova wheel installs api-paste.ini under the venv's etc/nova/, not
# where nova's conf fixture looks for it; oslo.config reads this variable
# over the fixture's default.
os.environ.setdefault('OS_WSGI__API_PASTE_CONFIG',
                      os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini'))

# nova 33 and 34 patch when asked (monkey_patch.patch); nova 31 patches
# eventlet when nova.monkey_patch is imported.
from nova import monkey_patch  # noqa: E402

if hasattr(monkey_patch, 'patch'):
    monkey_patch.patch()
from nova import objects  # noqa: E402

objects.register_all()

# The recovery package reads [recover] and leaves registering it to its
# host: nova/conf in patched nova, the overlay's install otherwise. Tests
# use the package without installing the overlay too.
import nova.conf  # noqa: E402

from nova_recover import conf as recover_conf  # noqa: E402

recover_conf.register_opts(nova.conf.CONF)
