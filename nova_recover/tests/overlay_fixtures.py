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
