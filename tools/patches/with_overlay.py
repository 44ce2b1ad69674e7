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

"""Run a Python module with the nova-recover overlay installed.

    python tools/patches/with_overlay.py -m MODULE [ARGS...]

check_patches.sh runs nova's own functional tests from the stock sdist
tree with the overlay in place through it: stestr starts every worker as
``${PYTHON} -m stestr.subunit_runner.run ...``, so with
``PYTHON="python tools/patches/with_overlay.py"`` each worker patches
eventlet as nova's test packages do, installs the overlay, and only then
imports the tests and nova.compute.manager's users. NOVA_RECOVER_NATIVE
must be unset: the nova under test is stock.
"""

import os
import runpy
import sys


def main():
    if os.environ.get('NOVA_RECOVER_NATIVE', '') not in ('', '0'):
        sys.exit('with_overlay: NOVA_RECOVER_NATIVE is set; this runs stock '
                 'nova with the overlay')
    if len(sys.argv) < 3 or sys.argv[1] != '-m':
        sys.exit(__doc__)
    module = sys.argv[2]
    sys.argv = [module] + sys.argv[3:]
    # As "python -m" would: the current directory first on sys.path.
    sys.path[0] = os.getcwd()
    # What nova/tests/{unit,functional}/__init__.py do first, so that the
    # overlay's imports happen after eventlet's monkey patching.
    # nova 31 patches when nova.monkey_patch is imported, later releases
    # when asked.
    from nova import monkey_patch
    if hasattr(monkey_patch, 'patch'):
        monkey_patch.patch()
    import nova_recover
    nova_recover.install()
    runpy.run_module(module, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
    main()
