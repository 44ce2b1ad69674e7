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

"""The nova releases nova-recover is made for, one per stable series.

One line per release: the point release its series and its constraints
file were made on (the newest when they were made), that sdist's sha256,
and the concurrency modes its nova-compute runs in. Everything that
works per release reads this: tools/gen_patches.py (the sdist and
tools/patches/integration/<release>/), tools/check_patches.sh and
tools/with-venv.sh (through ``python tools/patches/releases.py
<release>``, which prints shell assignments).

Taking up a new point release: change its version and sha256 here and
its pins in the constraints file, run ``tools/gen_patches.py --release
<release> --refresh-integration`` to carry the integration diffs over
(it fails, naming the hunk, where one no longer applies), then
``tox -e patches-<release>``.
"""

import collections
import os
import sys

Release = collections.namedtuple(
    'Release', ['name', 'nova', 'sha256', 'constraints', 'modes'])

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# modes: the values of OS_NOVA_DISABLE_EVENTLET_PATCHING the release's
# nova-compute runs with. nova 31 has only eventlet; nova 33 added native
# threading as an experiment (eventlet stays its default); nova 34 made
# threading the default and deprecated eventlet.
RELEASES = collections.OrderedDict((r.name, r) for r in [
    Release('2025.1', '31.3.1',
            '483991f483d72edb3bcb61b4da75199c39da727c7ed255e584ee08aea6162c41',
            'constraints-2025.1.txt', ('eventlet:False',)),
    Release('2026.1', '33.0.2',
            '84ab864ced8867f2989f3ba65ead61a7e39891ee7ea693850331636ac9d360ea',
            'constraints-2026.1.txt', ('eventlet:False', 'threading:True')),
    Release('2026.2', '34.0.0',
            '919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df',
            'constraints.txt', ('threading:True', 'eventlet:False')),
])
# The release everything runs on unless told otherwise, and the only one
# the real deployment runs on.
DEFAULT = '2026.2'


def get(name=None):
    try:
        return RELEASES[name or DEFAULT]
    except KeyError:
        raise SystemExit('unknown release %r; known: %s'
                         % (name, ', '.join(RELEASES)))


def shell(name=None):
    """The release as shell assignments, for the shell tools."""
    release = get(name)
    return '\n'.join([
        'release=%s' % release.name,
        'nova_version=%s' % release.nova,
        'sdist=nova-%s.tar.gz' % release.nova,
        'sha=%s' % release.sha256,
        'constraints=%s' % os.path.join(TOP, release.constraints),
        'modes="%s"' % ' '.join(release.modes),
    ])


if __name__ == '__main__':
    print(shell(sys.argv[1] if len(sys.argv) > 1 else None))
