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

"""Make the deployment's fake driver loadable as a nova.virt driver.

nova 34's load_compute_driver imports 'nova.virt.%s' % compute_driver,
so [DEFAULT]compute_driver can only name a module inside nova.virt.
This finder answers for the one name nova.virt.persistent_fake with
nova_recover/tests/deployment/fake_driver.py, loaded from its file so
that nova_recover.tests (the in-process harness, which sets up eventlet)
is never imported into a real service. Only the deployment's processes
have this directory on PYTHONPATH.
"""

import importlib.abc
import importlib.util
import os
import sys

NAME = 'nova.virt.persistent_fake'
PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
    os.pardir, 'nova_recover', 'tests', 'deployment', 'fake_driver.py')


class _Finder(importlib.abc.MetaPathFinder):

    def find_spec(self, fullname, path, target=None):
        if fullname != NAME:
            return None
        return importlib.util.spec_from_file_location(
            NAME, os.path.normpath(PATH))


sys.meta_path.append(_Finder())
