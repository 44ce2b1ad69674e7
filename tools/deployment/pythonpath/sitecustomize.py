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

"""Make the deployment's drivers loadable as nova.virt drivers.

nova 34's load_compute_driver imports 'nova.virt.%s' % compute_driver,
so [DEFAULT]compute_driver can only name a module inside nova.virt.
This finder answers for the few names of MODULES with the files of
nova_recover/tests/deployment, loaded from their files so that
nova_recover.tests (the in-process harness, which sets up eventlet) is
never imported into a real service: the fake driver whose guests outlive
nova-compute, the libvirt driver with crash points, and the crash points
both share. Only the deployment's processes have this directory on
PYTHONPATH.
"""

import importlib.abc
import importlib.util
import os
import sys

HERE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
    os.pardir, 'nova_recover', 'tests', 'deployment')
MODULES = {
    'nova.virt.persistent_fake': 'fake_driver.py',
    'nova.virt.crashpoint_libvirt': 'libvirt_driver.py',
    'nova.virt.deployment_crash_points': 'crash_points.py',
}


class _Finder(importlib.abc.MetaPathFinder):

    def find_spec(self, fullname, path, target=None):
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(
            fullname, os.path.normpath(os.path.join(HERE,
                                                    MODULES[fullname])))


sys.meta_path.append(_Finder())
