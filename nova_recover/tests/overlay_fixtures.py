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

"""Fixtures of the overlay: installing it for a test, or not at all.

Kept apart from fixtures.py, which the patch series copies into nova's
tree: patched nova routes _init_instance itself, so its copies of the
tests leave out every use of this module (tools/gen_patches.py drops
the lines ``self.useFixture(overlay_fixtures.Overlay())`` and the import
of this module, and fails on any other use).
"""

import importlib
import os

import fixtures

import nova_recover


class Overlay(fixtures.Fixture):
    """Install the overlay for one test and take it out afterwards.

    With NOVA_RECOVER_NATIVE=1 set, the nova under test carries the patch
    series and the overlay is not installed: the same tests then prove
    the patches behave as the overlay does.
    """

    def _setUp(self):
        if native():
            return
        nova_recover.install()
        self.addCleanup(nova_recover.uninstall)


def native():
    """Whether the tests run against a patched nova, overlay off."""
    return os.environ.get('NOVA_RECOVER_NATIVE', '') in ('1', 'true')


def startup_threads():
    """What fixtures.ProductionShape wraps in a whole start-up.

    The read-ahead and the deferred sweep run compute-side code in
    threads of their own, from patched nova's package when the tests
    run against it (NOVA_RECOVER_NATIVE=1), from the overlay's
    otherwise.
    """
    package = ('nova.compute.startup_recovery' if native()
               else 'nova_recover.startup_recovery')
    read_ahead = importlib.import_module(package + '.read_ahead')
    sweep = importlib.import_module(package + '.sweep')
    return ((read_ahead, '_read', True), (sweep, 'sweep_once', False))
