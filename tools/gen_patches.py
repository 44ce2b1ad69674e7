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

"""Generate patches/ (a quilt / git am series) from the overlay's modules.

The series is derived, never hand-edited: every rule module, the engine
and the unit tests are copied from nova_recover/ with their imports
rewritten for nova's tree, so the overlay and the patches cannot drift.
``--check`` regenerates into a temporary directory and fails when the
result differs from patches/.

Adding a rule module to the series is one line in SERIES. Existing nova
tests that a rule changes are fixed in the same patch through
TEST_EDITS, small (old, new) replacements that fail loudly when the old
text is gone.
"""

import argparse
import ast
import difflib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import tokenize

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOVA_VERSION = '34.0.0'
SDIST = 'nova-%s.tar.gz' % NOVA_VERSION
SDIST_SHA256 = (
    '919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df')
CACHE = os.path.join(TOP, '.work', 'sdist')

# The order the upstream changes merged. One module per patch; append a
# module here to add a patch. engine.RULES decides the order rules run in.
SERIES = [
    'build',
    'image',
    'deleting',
    'snapshot_pending',
    'reboot',
    'powering',
    'rebuild',
    'pause',
    'password',
    'soft_delete',
    'rescue',
    'shelve',
    'resize',
    'migrating',
]

# Fixed so that regenerating is byte-stable; bump LAST_UPDATE by hand
# when the series changes meaningfully.
AUTHOR_NAME = 'nova-recover developers'
AUTHOR_EMAIL = 'dev@nova-recover.invalid'
LAST_UPDATE = '2026-11-25'
GIT_DATE = LAST_UPDATE + 'T12:00:00+0000'

PACKAGE = 'nova/compute/startup_recovery'
MODULE = 'nova.compute.startup_recovery'
MANAGER = 'nova/compute/manager.py'
TEST_MGR = 'nova/tests/unit/compute/test_compute_mgr.py'
# Framework modules the first patch adds besides its rule module.
FRAMEWORK = ('base', 'evidence', 'engine')
# Overlay modules that live elsewhere in nova's tree: nova keeps every
# config option under nova/conf (hacking check N342).
RELOCATED = {'conf': ('nova/conf/recover.py', 'nova.conf', 'recover')}

INIT_PY = '''\
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

"""Recovery of instances left in a transitional state by a restart.

ComputeManager._init_instance runs engine.init_instance for every
instance at nova-compute start-up.
"""
'''

FIRST_PATCH_NOTE = '''\
This first patch also adds the start-up recovery engine
(nova/compute/startup_recovery) and routes
ComputeManager._init_instance through it; nova's previous
_init_instance stays as _init_instance_default and still runs for every
instance that no rule settles.'''

# The hook in ComputeManager: (old, new), applied once by the first patch.
MANAGER_EDITS = [
    ('from nova.compute import share_management\n',
     'from nova.compute import share_management\n'
     'from nova.compute.startup_recovery import engine as '
     'startup_recovery_engine\n'),
    ('    def _init_instance(self, context, instance):\n',
     '    def _init_instance(self, context, instance):\n'
     '        """Recover an interrupted operation, then initialize the '
     'instance.\n'
     '\n'
     '        The start-up recovery rules settle an instance left in a\n'
     '        transitional state by a restart; the rest goes through\n'
     '        _init_instance_default.\n'
     '        """\n'
     '        startup_recovery_engine.init_instance(\n'
     '            self, context, instance, self._init_instance_default)\n'
     '\n'
     '    def _init_instance_default(self, context, instance):\n'),
]

# The unit-test base class: nova_recover/tests/unit/base.py without the
# overlay. (old, new) replacements applied to its text.
TEST_BASE_EDITS = [
    ('    """A real ComputeManager, the fake driver and the overlay '
     'installed.\n',
     '    """A real ComputeManager with the fake driver, for start-up '
     'recovery.\n'),
    ('    Tests drive ComputeManager._init_instance, as nova-compute '
     'start-up\n    does, so the same test holds for the overlay and the '
     'patch series.\n',
     '    Tests drive ComputeManager._init_instance, as nova-compute '
     'start-up\n    does.\n'),
    ('        self.useFixture(recover_fixtures.Overlay())\n', ''),
]
# Imports of the overlay's test helpers that nova's tree does without.
DROPPED_TEST_IMPORTS = {'nova_recover.tests.fixtures'}

# Existing tests in test_compute_mgr.py whose stock behaviour a rule
# changes, fixed in that rule's patch: {module: [(old, new), ...]}.
TEST_EDITS = {
    'build': [
        # BUILDING and the build task states go to ERROR by compare-and-
        # swap on the task state they were found in.
        ('    def _test_init_instance_sets_building_error(self, vm_state,\n'
         '                                                task_state=None):\n',
         '    def _test_init_instance_sets_building_error(self, vm_state,\n'
         '                                                task_state=None,\n'
         '                                                **save_kwargs):\n'),
        ('            save.assert_called_once_with()\n'
         '        self.assertIsNone(instance.task_state)\n'
         '        self.assertEqual(vm_states.ERROR, instance.vm_state)\n'
         '\n'
         '    def test_init_instance_sets_building_error(self):\n'
         '        self._test_init_instance_sets_building_error('
         'vm_states.BUILDING)\n',
         '            save.assert_called_once_with(**save_kwargs)\n'
         '        self.assertIsNone(instance.task_state)\n'
         '        self.assertEqual(vm_states.ERROR, instance.vm_state)\n'
         '\n'
         '    def test_init_instance_sets_building_error(self):\n'
         '        self._test_init_instance_sets_building_error(\n'
         '            vm_states.BUILDING, expected_task_state=None)\n'),
        ('        instance.host = self.compute.host\n'
         '        with mock.patch.object(instance, \'save\') as save:\n'
         '            self.compute._init_instance(self.context, instance)\n'
         '            save.assert_called_once_with()\n',
         '        instance.host = self.compute.host\n'
         '        task_state = instance.task_state\n'
         '        with mock.patch.object(instance, \'save\') as save:\n'
         '            self.compute._init_instance(self.context, instance)\n'
         '            save.assert_called_once_with('
         'expected_task_state=task_state)\n'),
    ],
    'image': [
        # The rule records the guest's power state as it clears the task,
        # so the mocked power state must be one.
        ('            self.compute._get_power_state = mock.Mock()\n'
         '            instance.info_cache = None\n'
         '            instance.power_state = power_state.RUNNING\n',
         '            self.compute._get_power_state = mock.Mock(\n'
         '                return_value=power_state.RUNNING)\n'
         '            instance.info_cache = None\n'
         '            instance.power_state = power_state.RUNNING\n'),
        # The upload states are cleared by compare-and-swap.
        ('    def _test_init_instance_cleans_image_states(self, instance):\n',
         '    def _test_init_instance_cleans_image_states(self, instance,\n'
         '                                                **save_kwargs):\n'),
        ('            save.assert_called_once_with()\n'
         '        self.assertIsNone(instance.task_state)\n'
         '\n'
         '    @mock.patch(',
         '            save.assert_called_once_with(**save_kwargs)\n'
         '        self.assertIsNone(instance.task_state)\n'
         '\n'
         '    @mock.patch('),
    ] + [
        ('        instance.task_state = task_states.%s\n'
         '        self._test_init_instance_cleans_image_states(instance)\n'
         % state,
         '        instance.task_state = task_states.%s\n'
         '        self._test_init_instance_cleans_image_states(\n'
         '            instance, expected_task_state=task_states.%s)\n'
         % (state, state))
        for state in ('IMAGE_PENDING_UPLOAD', 'IMAGE_UPLOADING')
    ],
    'deleting': [
        # A failed deletion now ends in ERROR with a fault, through the
        # engine, instead of a log line only.
        ("    @mock.patch('nova.compute.manager.LOG')\n"
         '    def test_init_instance_complete_partial_deletion_raises_'
         'exception(\n',
         "    @mock.patch('nova.compute.startup_recovery.engine.LOG')\n"
         '    def test_init_instance_complete_partial_deletion_raises_'
         'exception(\n'),
        ('            mock_deletion.side_effect = test.TestingException()\n'
         '            self.compute._init_instance(self, instance)\n'
         "            msg = u'Failed to complete a deletion'\n"
         '            mock_log.exception.assert_called_once_with('
         'msg, instance=instance)\n',
         '            mock_deletion.side_effect = test.TestingException()\n'
         "            with mock.patch.object(instance, 'save'):\n"
         '                self.compute._init_instance(self, instance)\n'
         '            mock_log.exception.assert_called_once_with(\n'
         '                mock.ANY, mock.ANY, instance=instance)\n'
         '            self.assertEqual(vm_states.ERROR, instance.vm_state)\n'),
        # ERROR is set by compare-and-swap on DELETING.
        ('        mock_set_instance_error_state = _create_patch(\n'
         "            self.compute, '_set_instance_obj_error_state')\n",
         "        mock_save = _create_patch(instance, 'save')\n"),
        ('            self.compute._init_instance(self.context, instance)\n'
         '        mock_set_instance_error_state.assert_called_once_with('
         'instance)\n',
         '            self.compute._init_instance(self.context, instance)\n'
         '        mock_save.assert_called_once_with(\n'
         '            expected_task_state=[task_states.DELETING])\n'
         '        self.assertEqual(vm_states.ERROR, instance.vm_state)\n'),
    ],
    'snapshot_pending': [
        ('        instance.task_state = task_states.%s\n'
         '        self._test_init_instance_cleans_image_states(instance)\n'
         % state,
         '        instance.task_state = task_states.%s\n'
         '        self._test_init_instance_cleans_image_states(\n'
         '            instance, expected_task_state=task_states.%s)\n'
         % (state, state))
        for state in ('IMAGE_SNAPSHOT', 'IMAGE_SNAPSHOT_PENDING')
    ],
    'reboot': [
        # A reboot whose guest runs is settled by compare-and-swap.
        ('    def _test_init_instance_cleans_reboot_state(self, instance):\n'
         '        instance.host = self.compute.host\n',
         '    def _test_init_instance_cleans_reboot_state(self, instance):\n'
         '        instance.host = self.compute.host\n'
         '        task_state = instance.task_state\n'),
        ('            if instance.power_state == power_state.RUNNING:\n'
         '                instance_save.assert_called_once_with()\n',
         '            if instance.power_state == power_state.RUNNING:\n'
         '                instance_save.assert_called_once_with(\n'
         '                    expected_task_state=task_state)\n'),
    ],
    'powering': [
        # The stop is retried only for a guest that still runs, and not
        # as a clean shutdown: the guest had its chance before the restart.
        ('        with test.nested(\n'
         '            mock.patch.object(self.compute, "stop_instance"),\n',
         '        with test.nested(\n'
         "            mock.patch.object(self.compute, '_get_power_state',\n"
         '                              return_value=power_state.RUNNING),\n'
         '            mock.patch.object(self.compute, "stop_instance"),\n'),
        ('        with test.nested(\n'
         '            mock.patch.object(\n'
         '                self.compute, "stop_instance", '
         'return_value=Exception\n',
         '        with test.nested(\n'
         "            mock.patch.object(self.compute, '_get_power_state',\n"
         '                              return_value=power_state.RUNNING),\n'
         '            mock.patch.object(\n'
         '                self.compute, "stop_instance", '
         'return_value=Exception\n'),
        ('            self.compute._init_instance(self.context, instance)\n'
         '            call = mock.call(self.context, instance, True)\n',
         '            self.compute._init_instance(self.context, instance)\n'
         '            call = mock.call(self.context, instance,\n'
         '                             clean_shutdown=False)\n'),
        ('            init_return = self.compute._init_instance('
         'self.context, instance)\n'
         '            call = mock.call(self.context, instance, True)\n',
         '            init_return = self.compute._init_instance('
         'self.context, instance)\n'
         '            call = mock.call(self.context, instance,\n'
         '                             clean_shutdown=False)\n'),
    ],
    'rebuild': [
        # An interrupted rebuild goes to ERROR by compare-and-swap.
        ('                self._test_init_instance_sets_building_error(\n'
         '                    vm_state, task_state)\n',
         '                self._test_init_instance_sets_building_error(\n'
         '                    vm_state, task_state,\n'
         '                    expected_task_state=task_state)\n'),
    ],
    'pause': [
        # A guest that runs is recorded ACTIVE by compare-and-swap.
        ('            power_state.RUNNING, task_states.%s)\n'
         '        mock_save.assert_called_once_with()\n' % state,
         '            power_state.RUNNING, task_states.%s)\n'
         '        mock_save.assert_called_once_with(\n'
         '            expected_task_state=task_states.%s)\n' % (state, state))
        for state in ('PAUSING', 'UNPAUSING')
    ],
    'resize': [
        # RESIZE_MIGRATING is reverted on the migration's source host, and
        # the rule also moves the source allocations back, drops the
        # migration context and ends the migration in error.
        ("        migration = objects.Migration(source_compute='fake-host1',\n"
         "                                      dest_compute='fake-host2')\n"
         '\n'
         '        with test.nested(\n'
         '            mock.patch.object(objects.Instance, '
         "'get_network_info',\n",
         '        migration = objects.Migration(source_compute=self.compute.'
         'host,\n'
         "                                      dest_compute='fake-host2',\n"
         '                                      uuid=uuids.migration,\n'
         "                                      status='migrating')\n"
         '\n'
         '        with test.nested(\n'
         '            mock.patch.object(self.compute.reportclient,\n'
         "                              'get_allocations_for_consumer',\n"
         '                              return_value={}),\n'
         "            mock.patch.object(instance, 'drop_migration_context'),\n"
         "            mock.patch.object(objects.Migration, 'save'),\n"
         '            mock.patch.object(objects.Instance, '
         "'get_network_info',\n"),
        ('        ) as (mock_get_nw, mock_plug, mock_finish, mock_get_inst,\n'
         '              mock_get_info, mock_save, mock_retry, mock_get_mig, '
         'mock_shares):\n'
         '            mock_get_info.side_effect = (\n'
         '                hardware.InstanceInfo(state=power_state.SHUTDOWN),\n'
         '                hardware.InstanceInfo('
         'state=power_state.SHUTDOWN))\n',
         '        ) as (mock_get_allocs, mock_drop, mock_mig_save,\n'
         '              mock_get_nw, mock_plug, mock_finish, mock_get_inst,\n'
         '              mock_get_info, mock_save, mock_retry, mock_get_mig, '
         'mock_shares):\n'
         '            mock_get_info.side_effect = (\n'
         '                hardware.InstanceInfo(state=power_state.SHUTDOWN),\n'
         '                hardware.InstanceInfo(state=power_state.SHUTDOWN),\n'
         '                hardware.InstanceInfo('
         'state=power_state.SHUTDOWN))\n'),
        ('            mock_retry.assert_called_once_with(instance, '
         'power_state.SHUTDOWN)\n'
         '            mock_get_nw.assert_called_once_with()\n',
         '            mock_retry.assert_called_once_with(instance, '
         'power_state.SHUTDOWN)\n'
         '            mock_get_nw.assert_called_with()\n'),
        ('            mock_finish.assert_called_once_with(self.context, '
         'instance,\n'
         '                                                [], migration, [], '
         'power_on)\n'
         '            mock_save.assert_called_once_with()\n',
         '            mock_finish.assert_called_once_with(self.context, '
         'instance,\n'
         '                                                [], migration, [], '
         'power_on)\n'
         '            mock_save.assert_called_once_with(\n'
         '                expected_task_state=task_states.RESIZE_MIGRATING)\n'
         '            mock_drop.assert_called_once_with()\n'
         "            self.assertEqual('error', migration.status)\n"),
        # RESIZE_PREP without a migration record only clears the task
        # state, by compare-and-swap.
        ('                task_state=task_states.RESIZE_PREP,\n'
         '                power_state=power_state.RUNNING)\n'
         '\n'
         '        with test.nested(\n',
         '                task_state=task_states.RESIZE_PREP,\n'
         '                power_state=power_state.RUNNING)\n'
         '\n'
         '        with test.nested(\n'
         "            mock.patch.object(objects.MigrationList, "
         "'get_by_filters',\n"
         '                              '
         'return_value=objects.MigrationList()),\n'),
        ('        ) as (\n'
         '                mock_get_power_state,\n'
         '                mock_nw_info,\n'
         '                mock_instance_save,\n'
         '                mock_shares\n'
         '            ):\n'
         '            self.compute._init_instance(self.context, instance)\n'
         '            mock_instance_save.assert_called_once_with()\n'
         '            self.assertIsNone(instance.task_state)\n',
         '        ) as (\n'
         '                mock_get_migrations,\n'
         '                mock_get_power_state,\n'
         '                mock_nw_info,\n'
         '                mock_instance_save,\n'
         '                mock_shares\n'
         '            ):\n'
         '            self.compute._init_instance(self.context, instance)\n'
         '            mock_instance_save.assert_called_once_with(\n'
         '                expected_task_state=task_states.RESIZE_PREP)\n'
         '            self.assertIsNone(instance.task_state)\n'
         '            self.assertEqual(vm_states.ACTIVE, '
         'instance.vm_state)\n'),
    ],
    'migrating': [
        # Besides nova's reset, the rule reads the other migration records
        # and keeps the instance ACTIVE only when its guest runs here.
        ('        with test.nested(\n'
         "            mock.patch.object(instance, 'save'),\n"
         "            mock.patch('nova.objects.Instance.get_network_info',\n"
         '                       return_value=network_model.NetworkInfo()),\n',
         '        with test.nested(\n'
         "            mock.patch.object(objects.MigrationList, "
         "'get_by_filters',\n"
         '                              '
         'return_value=objects.MigrationList()),\n'
         "            mock.patch.object(self.compute, '_get_power_state',\n"
         '                              return_value=power_state.RUNNING),\n'
         "            mock.patch.object(instance, 'save'),\n"
         "            mock.patch('nova.objects.Instance.get_network_info',\n"
         '                       '
         'return_value=network_model.NetworkInfo()),\n'),
        ('        ) as (\n'
         '                save,\n'
         '                get_nw_info,\n',
         '        ) as (\n'
         '                mock_get_migrations,\n'
         '                mock_get_power_state,\n'
         '                save,\n'
         '                get_nw_info,\n'),
    ],
}


class GenError(Exception):
    pass


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def fetch_sdist(cache=CACHE):
    """The verified sdist, downloaded with pip into cache when missing."""
    path = os.path.join(cache, SDIST)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(
            [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
             '--no-binary', ':all:', 'nova==%s' % NOVA_VERSION,
             '-d', cache], check=True)
    check_sha(path)
    return path


def check_sha(path):
    got = sha256(path)
    if got != SDIST_SHA256:
        raise GenError('%s: sha256 %s, expected %s'
                       % (path, got, SDIST_SHA256))


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def replace_once(text, old, new, where):
    count = text.count(old)
    if count != 1:
        raise GenError('%s: expected the text exactly once, found it %d '
                       'times:\n%s' % (where, count, old))
    return text.replace(old, new)


# --- imports ---------------------------------------------------------------

def import_key(line):
    """hacking H306's sort key: 'from a import b' sorts as 'a.b'."""
    words = line.split()
    if words[0] == 'from':
        return ('%s.%s' % (words[1], words[3])).lower()
    return words[1].lower()


def import_target(node):
    """[(bound name, dotted object)] for one ast import statement."""
    pairs = []
    for alias in node.names:
        if isinstance(node, ast.ImportFrom):
            target = '%s.%s' % (node.module, alias.name)
            name = alias.asname or alias.name
        else:
            target = alias.name
            name = alias.asname or alias.name.split('.')[0]
        pairs.append((name, target))
    return pairs


def import_category(line):
    root = import_key(line).split('.')[0]
    if root == 'nova':
        return 2
    if root in sys.stdlib_module_names:
        return 0
    return 1


def split_imports(text):
    """(lines before the imports, the top import block, the rest)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    first = last = None
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if node.lineno != node.end_lineno:
                raise GenError('multi-line import at line %d' % node.lineno)
            first = first or node.lineno
            last = node.end_lineno
        elif last:
            break
    if first is None:
        return lines, [], []
    return lines[:first - 1], lines[first - 1:last], lines[last:]


def insert_imports(block, new_lines):
    """Insert import lines into an import block, keeping hacking's order.

    Each line goes to the group of its category (stdlib, third party,
    nova) at its sorted place; a missing group is added after the last
    group of a lower category.
    """
    block = list(block)
    for line in new_lines:
        if line in block:
            continue
        cat = import_category(line)
        key = import_key(line)
        # Find the import lines of groups in this category.
        candidates = [i for i, l in enumerate(block)
                      if (l.startswith(('import ', 'from ')) and
                          import_category(l) == cat)]
        if candidates:
            pos = candidates[-1] + 1
            for i in candidates:
                if import_key(block[i]) > key:
                    pos = i
                    break
            block.insert(pos, line)
            continue
        lower = [i for i, l in enumerate(block)
                 if (l.startswith(('import ', 'from ')) and
                     import_category(l) < cat)]
        if not lower:
            raise GenError('no place for import %r' % line)
        pos = lower[-1] + 1
        block[pos:pos] = ['\n', line]
    return block


def rename_names(text, renames):
    """Rename top-level NAME tokens (not attributes) in source text."""
    if not renames:
        return text
    lines = text.splitlines(keepends=True)
    edits = []
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if (tok.type == tokenize.NAME and tok.string in renames and
                not (prev is not None and prev.type == tokenize.OP and
                     prev.string == '.')):
            edits.append((tok.start, tok.end, renames[tok.string]))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            prev = tok
    for (srow, scol), (erow, ecol), new in reversed(edits):
        assert srow == erow
        line = lines[srow - 1]
        lines[srow - 1] = line[:scol] + new + line[ecol:]
    return ''.join(lines)


def replace_attribute(text, name, mapping):
    """Turn ``name.attr`` into mapping[attr]; fail on any other use."""
    def sub(match):
        attr = match.group(1)
        if attr not in mapping:
            raise GenError('%s.%s has no counterpart in nova' % (name, attr))
        return mapping[attr]
    text = re.sub(r'(?<![\w.])%s\.(\w+)' % re.escape(name), sub, text)
    if re.search(r'(?<![\w.])%s(?!\w)' % re.escape(name), text):
        raise GenError('%s is used other than as %s.<attr>' % (name, name))
    return text


OVERLAY_IMPORT = re.compile(
    r'^([ \t]*)from nova_recover import (\w+)((?: as \w+)?)$', re.M)
OVERLAY_NAME = re.compile(r'(?<![\w.])nova_recover(?!\w)')


def overlay_deps(text):
    """The nova_recover modules that a module imports."""
    if re.search(r'^\s*import nova_recover', text, re.M):
        raise GenError('"import nova_recover..." cannot be rewritten; use '
                       '"from nova_recover import X"')
    return {m.group(2) for m in OVERLAY_IMPORT.finditer(text)}


def to_nova_module(text):
    """A nova_recover module as it reads inside nova's tree."""
    pre, block, rest = split_imports(text)
    keep, moved = [], []
    for line in block:
        match = OVERLAY_IMPORT.match(line.rstrip('\n'))
        if match and match.group(2) in RELOCATED:
            _path, package, name = RELOCATED[match.group(2)]
            moved.append('from %s import %s%s\n'
                         % (package, name,
                            match.group(3) or ' as ' + match.group(2)))
        elif match:
            moved.append('from %s import %s%s\n'
                         % (MODULE, match.group(2), match.group(3)))
        elif line.startswith(('import nova_recover', 'from nova_recover')):
            raise GenError('cannot rewrite import %r' % line)
        else:
            keep.append(line)
    # The moved lines join the nova group; drop the blank line their own
    # group leaves behind.
    while keep and not keep[-1].strip():
        keep.pop()
    out = ''.join(pre + insert_imports(keep, moved) + rest)
    out = OVERLAY_IMPORT.sub(r'\1from %s import \2\3' % MODULE, out)
    out = re.sub(r'(?<![\w.])nova_recover\.(?!tests)', MODULE + '.', out)
    if OVERLAY_NAME.search(out):
        raise GenError('nova_recover left after the rewrite')
    return out


def engine_for(text, modules):
    """engine.py with only the rule modules added so far."""
    rules = re.search(r'^RULES = \(\n((?:    \w+,\n)+)\)\n', text, re.M)
    if not rules:
        raise GenError('engine.py: RULES tuple not found')
    names = re.findall(r'    (\w+),\n', rules.group(1))
    missing = set(modules) - set(names)
    if missing:
        raise GenError('engine.RULES lacks %s' % sorted(missing))
    kept = ''.join('    %s,\n' % n for n in names if n in modules)
    text = text[:rules.start(1)] + kept + text[rules.end(1):]
    for name in names:
        if name not in modules:
            text = replace_once(text, 'from nova_recover import %s\n' % name,
                                '', 'engine.py')
    return to_nova_module(text), overlay_deps(text)


# --- tests -----------------------------------------------------------------

class TestFile(object):
    """nova's test_compute_mgr.py, and merging test modules into it."""

    def __init__(self, text):
        self.text = text

    def _imports(self):
        tree = ast.parse(self.text)
        by_target, by_name = {}, {}
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name, target in import_target(node):
                    by_target.setdefault(target, name)
                    by_name[name] = target
        top = set(by_name)
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                top.add(node.name)
            elif isinstance(node, ast.Assign):
                top.update(t.id for t in node.targets
                           if isinstance(t, ast.Name))
        return by_target, by_name, top

    def merge(self, source, where, base_names=None, edits=()):
        """Append a test module's body, merging its imports.

        base_names maps names of nova_recover.tests.unit.base to the
        names the base class got in nova's file.
        """
        for old, new in edits:
            source = replace_once(source, old, new, where)
        by_target, by_name, top = self._imports()
        pre, block, body = split_imports(source)
        if ast.get_docstring(ast.parse(source)):
            raise GenError('%s: a module docstring has no place in %s'
                           % (where, TEST_MGR))
        tree = ast.parse(''.join(block))
        renames, new_imports = {}, []
        base_alias = None
        for node in tree.body:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                raise GenError('%s: unexpected statement in the import '
                               'block' % where)
            for name, target in import_target(node):
                if target == 'nova_recover.tests.unit.base':
                    base_alias = name
                    continue
                if target in DROPPED_TEST_IMPORTS:
                    continue
                if target.startswith('nova_recover.tests'):
                    raise GenError('%s: %s has no counterpart in nova'
                                   % (where, target))
                if target.startswith('nova_recover.'):
                    target = MODULE + target[len('nova_recover'):]
                if target in by_target:
                    if by_target[target] != name:
                        renames[name] = by_target[target]
                    continue
                if name in by_name:
                    raise GenError('%s: %s is bound to %s in %s'
                                   % (where, name, by_name[name], TEST_MGR))
                new_imports.append(self._import_line(name, target))
        body_text = ''.join(body).lstrip('\n')
        if base_alias:
            if base_names is None:
                raise GenError('%s: the test base is not merged yet' % where)
            body_text = replace_attribute(body_text, base_alias, base_names)
        body_text = rename_names(body_text, renames)
        body_text = re.sub(r'(?<![\w.])nova_recover\.(?!tests)',
                           MODULE + '.', body_text)
        if OVERLAY_NAME.search(body_text):
            raise GenError('%s: nova_recover left after the rewrite' % where)
        body_text = self._drop_repeated_constants(body_text, top)
        defined = set()
        for node in ast.parse(body_text).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets
                               if isinstance(t, ast.Name))
        clash = defined & top
        if clash:
            raise GenError('%s: %s already defined in %s'
                           % (where, sorted(clash), TEST_MGR))
        pre, block, rest = split_imports(self.text)
        text = ''.join(pre + insert_imports(block, new_imports) + rest)
        self.text = text.rstrip('\n') + '\n\n\n' + body_text
        return defined

    def _drop_repeated_constants(self, body_text, top):
        """Drop module-level assignments the file already has verbatim.

        Two test modules may share a constant (say SOURCE_ALLOCATIONS);
        the second one uses the first one's, which is the same text.
        Any other clash of names still fails in merge().
        """
        ours = set()
        for node in ast.parse(self.text).body:
            if isinstance(node, ast.Assign):
                ours.add(ast.get_source_segment(self.text, node))
        lines = body_text.splitlines(keepends=True)
        drop = []
        for node in ast.parse(body_text).body:
            if not isinstance(node, ast.Assign):
                continue
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            if (names & top and
                    ast.get_source_segment(body_text, node) in ours):
                drop.append((node.lineno - 1, node.end_lineno))
        for start, end in reversed(drop):
            del lines[start:end]
            # Keep at most two blank lines where the statement was.
            while (start < len(lines) and not lines[start].strip() and
                   start >= 2 and not lines[start - 1].strip() and
                   not lines[start - 2].strip()):
                del lines[start]
        return ''.join(lines).lstrip('\n')

    @staticmethod
    def _import_line(name, target):
        module, _, attr = target.rpartition('.')
        if not module:
            line = 'import %s' % target
            return line + ('\n' if name == target else ' as %s\n' % name)
        line = 'from %s import %s' % (module, attr)
        return line + ('\n' if name == attr else ' as %s\n' % name)


# --- commit messages -------------------------------------------------------

def docstring_parts(path):
    """(subject, summary, origin, other paragraphs) of a module docstring.

    A module that mirrors an upstream change says so in a paragraph
    'Mirrors "<subject>"...', whose subject the patch takes. A module
    beyond the blueprint has a paragraph 'Beyond ...' instead: its
    summary line is the subject, and origin is None.
    """
    doc = ast.get_docstring(ast.parse(read(path)), clean=True)
    if not doc:
        raise GenError('%s has no module docstring' % path)
    paragraphs = [p.strip() for p in doc.split('\n\n') if p.strip()]
    summary = paragraphs[0]
    mirrors = [p for p in paragraphs if p.startswith('Mirrors')]
    if not mirrors:
        if not any(p.startswith('Beyond') for p in paragraphs):
            raise GenError('%s: no "Mirrors ..." or "Beyond ..." paragraph '
                           'in the docstring' % path)
        subject = ' '.join(summary.split()).rstrip('.')
        return subject, summary, None, paragraphs[1:]
    origin = ' '.join(mirrors[0].split())
    match = re.match(r'Mirrors "([^"]+)"', origin)
    if not match:
        raise GenError('%s: the "Mirrors" paragraph quotes no subject'
                       % path)
    rest = [p for p in paragraphs[1:] if p is not mirrors[0]]
    return match.group(1), summary, origin[len('Mirrors '):], rest


def dep3_field(name, paragraphs):
    """A DEP-3 field, continuation lines indented, empty lines as ' .'."""
    lines = []
    for i, para in enumerate(paragraphs):
        if i:
            lines.append(' .')
        first = not lines
        for line in textwrap.wrap(' '.join(para.split()), 70,
                                  break_on_hyphens=False):
            lines.append(('%s: %s' % (name, line)) if first
                         else ' ' + line)
            first = False
    return '\n'.join(lines)


def commit_message(module, first):
    subject, summary, origin, rest = docstring_parts(
        os.path.join(TOP, 'nova_recover', module + '.py'))
    description = [summary] + rest
    if first:
        description.append(FIRST_PATCH_NOTE)
    if origin is None:
        # Our own change, no upstream counterpart (the "Beyond ..."
        # paragraph of the description says so); not proposed upstream.
        origin_field, forwarded = 'Origin: vendor', 'Forwarded: no'
    else:
        origin_field = dep3_field('Origin',
                                  ['vendor, mirrors upstream ' + origin])
        forwarded = 'Forwarded: not-needed'
    return '\n'.join([
        subject,
        '',
        dep3_field('Description', description),
        'Author: %s <%s>' % (AUTHOR_NAME, AUTHOR_EMAIL),
        origin_field,
        forwarded,
        'Last-Update: %s' % LAST_UPDATE,
        '',
    ])


# --- the series ------------------------------------------------------------

def git(tree, *args, **kwargs):
    env = dict(os.environ,
               GIT_AUTHOR_NAME=AUTHOR_NAME, GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
               GIT_COMMITTER_NAME=AUTHOR_NAME,
               GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
               GIT_AUTHOR_DATE=GIT_DATE, GIT_COMMITTER_DATE=GIT_DATE,
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM='1',
               HOME=tree)
    return subprocess.run(
        ['git', '-c', 'safe.directory=*', '-c', 'core.abbrev=12',
         '-c', 'diff.noprefix=false',
         '-c', 'core.autocrlf=false'] + list(args),
        cwd=tree, env=env, check=True, stdout=subprocess.PIPE,
        text=True, **kwargs).stdout


def unpack(tarball, dest):
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter='tar')
    tree = os.path.join(dest, 'nova-%s' % NOVA_VERSION)
    if not os.path.isdir(tree):
        raise GenError('%s does not unpack to nova-%s/' % (tarball,
                                                           NOVA_VERSION))
    return tree


def build_series(tarball, out, workdir, keep_tree=None):
    """Build the series in a git tree under workdir; write it to out."""
    check_sha(tarball)
    for module in SERIES + list(FRAMEWORK):
        path = os.path.join(TOP, 'nova_recover', module + '.py')
        if not os.path.exists(path):
            raise GenError('%s is listed but does not exist' % path)
    tree = unpack(tarball, workdir)
    git(tree, 'init', '-q')
    git(tree, 'add', '-A', '-f', '.')
    git(tree, 'commit', '-q', '-m', 'nova %s, as released' % NOVA_VERSION)

    src = os.path.join(TOP, 'nova_recover')
    tests = TestFile(read(os.path.join(tree, TEST_MGR)))
    base_names = None
    added = []
    in_tree = set()
    engine_src = read(os.path.join(src, 'engine.py'))
    for n, module in enumerate(SERIES):
        first = n == 0
        changed = []
        added.append(module)
        engine, engine_deps = engine_for(engine_src, added)
        if first:
            write(os.path.join(tree, PACKAGE, '__init__.py'), INIT_PY)
            changed.append(os.path.join(PACKAGE, '__init__.py'))
            manager = read(os.path.join(tree, MANAGER))
            for old, new in MANAGER_EDITS:
                manager = replace_once(manager, old, new, MANAGER)
            write(os.path.join(tree, MANAGER), manager)
            changed.append(MANAGER)
            base_src = read(os.path.join(src, 'tests', 'unit', 'base.py'))
            names = tests.merge(base_src, 'tests/unit/base.py',
                                edits=TEST_BASE_EDITS)
            base_names = {name: name for name in names}
        # The module, the framework, and whatever they import.
        todo = [module] + ([m for m in FRAMEWORK if m != 'engine']
                           if first else [])
        todo += sorted(engine_deps)
        while todo:
            name = todo.pop(0)
            if name in in_tree or name == 'engine':
                continue
            if name in SERIES and name not in added:
                raise GenError('patch %d (%s) needs %s, which comes later '
                               'in SERIES' % (n + 1, module, name))
            path = os.path.join(src, name + '.py')
            if not os.path.exists(path):
                raise GenError('%s is imported but does not exist' % path)
            text = read(path)
            target = RELOCATED.get(name, (os.path.join(PACKAGE,
                                                       name + '.py'),))[0]
            write(os.path.join(tree, target), to_nova_module(text))
            changed.append(target)
            in_tree.add(name)
            todo.extend(sorted(overlay_deps(text)))
        write(os.path.join(tree, PACKAGE, 'engine.py'), engine)
        changed.append(os.path.join(PACKAGE, 'engine.py'))
        for old, new in TEST_EDITS.get(module, ()):
            tests.text = replace_once(tests.text, old, new,
                                      '%s (%s)' % (TEST_MGR, module))
        test_path = os.path.join(src, 'tests', 'unit',
                                 'test_%s.py' % module)
        if os.path.exists(test_path):
            tests.merge(read(test_path), 'tests/unit/test_%s.py' % module,
                        base_names=base_names)
        else:
            print('gen_patches: no tests/unit/test_%s.py, patch %d has no '
                  'new tests' % (module, n + 1), file=sys.stderr)
        write(os.path.join(tree, TEST_MGR), tests.text)
        changed.append(TEST_MGR)
        git(tree, 'add', '-f', *sorted(set(changed)))
        git(tree, 'commit', '-q', '-F', '-',
            input=commit_message(module, first))

    if os.path.exists(out):
        for name in os.listdir(out):
            if name.endswith('.patch') or name == 'series':
                os.unlink(os.path.join(out, name))
    os.makedirs(out, exist_ok=True)
    git(tree, 'format-patch', '-q', '--no-signature', '--zero-commit',
        '--no-numbered', '-o', out, 'HEAD~%d' % len(SERIES))
    names = sorted(n for n in os.listdir(out) if n.endswith('.patch'))
    if len(names) != len(SERIES):
        raise GenError('format-patch wrote %d patches for %d modules'
                       % (len(names), len(SERIES)))
    write(os.path.join(out, 'series'), ''.join(n + '\n' for n in names))
    if keep_tree:
        shutil.rmtree(keep_tree, ignore_errors=True)
        shutil.copytree(tree, keep_tree, symlinks=True)
    return names


def check(tarball, out):
    """Regenerate into a temporary directory and compare with out."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, 'patches')
        build_series(tarball, fresh, os.path.join(tmp, 'work'))
        want = sorted(os.listdir(fresh))
        have = sorted(n for n in os.listdir(out)
                      if n.endswith('.patch') or n == 'series')
        drift = []
        for name in sorted(set(want) | set(have)):
            a = os.path.join(out, name)
            b = os.path.join(fresh, name)
            old = read(a).splitlines(True) if os.path.exists(a) else []
            new = read(b).splitlines(True) if os.path.exists(b) else []
            if old != new:
                drift.extend(difflib.unified_diff(
                    old, new, 'patches/' + name, 'regenerated/' + name))
        if drift:
            sys.stdout.writelines(drift)
            print('gen_patches: patches/ is out of date; run '
                  'tools/gen_patches.py', file=sys.stderr)
            return 1
    print('gen_patches: patches/ matches the overlay (%d patches)'
          % len(SERIES))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('tarball', nargs='?',
                        help='nova-%s sdist (default: pip download into '
                             '.work/sdist)' % NOVA_VERSION)
    parser.add_argument('--out', default=os.path.join(TOP, 'patches'))
    parser.add_argument('--check', action='store_true',
                        help='fail if patches/ differs from a fresh run')
    parser.add_argument('--keep-tree', metavar='DIR',
                        help='also copy the patched git tree to DIR')
    args = parser.parse_args(argv)
    try:
        tarball = args.tarball or fetch_sdist()
        if args.check:
            return check(tarball, args.out)
        with tempfile.TemporaryDirectory() as tmp:
            names = build_series(tarball, args.out, tmp, args.keep_tree)
        for name in names:
            print(os.path.join(os.path.relpath(args.out), name))
    except GenError as exc:
        print('gen_patches: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
