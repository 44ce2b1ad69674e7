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

The series is derived, never hand-edited: every rule module, the engine,
its gates and the unit tests are copied from nova_recover/ with their
imports rewritten for nova's tree, so the overlay and the patches cannot
drift. ``--check`` regenerates into a temporary directory and fails when
the result differs from patches/ or from doc/source/review.rst.

One entry of SERIES is one patch: ``engine`` (the framework, first),
then rule modules (nova_recover/startup_recovery/rules/<name>.py) and gates
(nova_recover/startup_recovery/<name>.py) by name. Adding a rule is one line in
SERIES: its module, its test module (tests/unit/rules/test_<name>.py)
and whatever they import land in that patch. Existing nova tests that a
patch changes are fixed in it through TEST_EDITS, small (old, new)
replacements that fail loudly when the old text is gone.
"""

import argparse
import ast
import collections
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

from pyflakes import api as pyflakes_api
from pyflakes import messages as pyflakes_messages

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOVA_VERSION = '34.0.0'
SDIST = 'nova-%s.tar.gz' % NOVA_VERSION
SDIST_SHA256 = (
    '919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df')
CACHE = os.path.join(TOP, '.work', 'sdist')
REVIEW_DOC = os.path.join(TOP, 'doc', 'source', 'review.rst')

# One entry per patch, in this order: the framework; the blueprint's
# changes in the order they merged upstream; the gate that tells a
# request still queued from one that died, and the operator's controls
# (a gate too); the rules beyond the blueprint. Delete a line to leave a
# patch out. engine.RULES decides the order rules run in, engine.GATES
# the order of the gates.
SERIES = [
    'engine',
    'build',
    'image',
    'deleting',
    'snapshot_pending',
    'reboot',
    'powering',
    'queued',
    'controls',
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
# The identity the project's own commits carry, so that a question about
# a patch reaches the people who answer for the code.
AUTHOR_NAME = 'Seed 29edaf8a maintainers'
AUTHOR_EMAIL = 'maintainers@users.noreply.r-seed-29edaf8a.example'
LAST_UPDATE = '2026-12-03'
GIT_DATE = LAST_UPDATE + 'T12:00:00+0000'

PACKAGE = 'nova/compute/startup_recovery'
MODULE = 'nova.compute.startup_recovery'
MANAGER = 'nova/compute/manager.py'
TEST_DIR = 'nova/tests/unit/compute'
TEST_MGR = TEST_DIR + '/test_compute_mgr.py'
TEST_COMPUTE = TEST_DIR + '/test_compute.py'
TEST_INIT_HOST = 'nova/tests/functional/compute/test_init_host.py'
# Test modules that need a database and the production-shape fixture
# become modules of their own, test_startup_recovery_<name>.py, beside
# the fixture, which is nova_recover/tests/fixtures.py without the
# overlay.
TEST_MODULE = TEST_DIR + '/test_startup_recovery_%s.py'
FIXTURES = TEST_DIR + '/recovery_fixtures.py'
FIXTURES_MODULE = 'nova.tests.unit.compute.recovery_fixtures'
# The framework patch's modules besides the engine: the rules' shared
# helpers, the task-state registry, the contracts of a rule and of a
# gate, and the state start-up recovery keeps on the manager.
FRAMEWORK = ('base', 'registry', 'contracts', 'state')
# Overlay modules that live elsewhere in nova's tree: nova keeps every
# config option under nova/conf (hacking check N342) and registers the
# group in nova/conf/__init__.py.
RELOCATED = {'conf': ('nova/conf/recover.py', 'nova.conf', 'recover')}
RELOCATED_EDITS = {
    'conf': [
        # nova.conf.opts.list_opts (oslo-config-generator --namespace
        # nova.conf) wants {group: opts} from every nova.conf module.
        ('    return [(recover_group, recover_opts)]\n',
         '    return {recover_group: recover_opts}\n'),
    ],
}
# Edits of nova files that come with a relocated module.
RELOCATED_TREE_EDITS = {
    'conf': {
        'nova/conf/__init__.py': [
            ('from nova.conf import quota\n',
             'from nova.conf import quota\nfrom nova.conf import recover\n'),
            ('quota.register_opts(CONF)\n',
             'quota.register_opts(CONF)\nrecover.register_opts(CONF)\n'),
        ],
    },
}
# Statements of the form ALIAS.register_opts(CONF) for a relocated
# module are dropped: nova/conf/__init__.py registers the group.
REGISTER_CALL = re.compile(r'^(\w+)\.register_opts\(CONF\)\n', re.M)

INIT_PY = """\
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

\"\"\"Recovery of instances left in a transitional state by a restart.

ComputeManager._init_instance runs engine.init_instance for every
instance at nova-compute start-up. base holds what the rules share,
contracts what the engine expects of a rule and of a gate, and state
what start-up recovery keeps on the compute manager; each other module
of this package is one rule (or a gate of the engine) and comes with its
own patch.
\"\"\"
"""

# The commit messages of the patches that have no rule module to take
# one from: {entry: (subject, [paragraphs], origin or None)}.
MESSAGES = {
    'engine': (
        'Route compute manager _init_instance through a start-up '
        'recovery engine',
        ['Add nova/compute/startup_recovery with the engine that the '
         'following patches add start-up recovery rules to, the helpers '
         'every rule shares (base.py: the compare-and-swap save, ERROR '
         'plus an instance fault, the operation a task state belongs to), '
         'the contracts of a rule and of a gate as typing Protocols '
         '(contracts.py), and the one object that start-up recovery keeps '
         'on the compute manager (state.py). '
         'ComputeManager._init_instance now calls '
         'engine.init_instance; nova\'s previous _init_instance stays, '
         'unchanged, as _init_instance_default and still runs for every '
         'instance that no rule settles.',
         'In this patch the engine has no rules and no gates, so every '
         'instance goes to _init_instance_default exactly as before, an '
         'exception out of it included: nothing changes in behaviour, and '
         'this patch leaves every nova test as it is.',
         'Related upstream: the blueprint recover-stuck-state moved '
         '_init_instance to native objects in "Make compute manager '
         '_init_instance use native objects" (nova commit 7be3be0155, '
         'Change-Id I1f0f9894f3003133eade712c965155f8516e5225, review '
         '56272; merged 2013-11-22). Nova 34 has had that for years, so '
         'this patch does not mirror it; the engine and every rule keep to '
         'nova.objects.Instance.'],
        None),
}
# Paragraphs a patch's message adds to its module's docstring, for what
# the patch changes in the engine beside its rule.
EXTRA_PARAGRAPHS = {
    'build': [
        'With the first rule, the engine also stops one instance from '
        'keeping nova-compute down: an exception out of nova\'s own '
        'start-up handling of an instance no longer leaves init_host. The '
        'instance goes to ERROR with an instance fault naming the '
        'interrupted operation, by compare-and-swap on its task state, '
        'and start-up goes on with the others. No nova test expects that '
        'exception to escape.'],
}
# Subjects for modules whose docstring summary does not read as one.
SUBJECTS = {
    'queued': 'Tell a request still queued from one that died',
    'controls': 'Let operators dry-run or switch off start-up recovery '
                'rules',
}
# Why a patch is over SIZE_LIMIT changed lines (tests included); the
# generator fails for a bigger patch without a note here.
# About as much as a reviewer reads as one change.
SIZE_LIMIT = 600
SIZE_NOTES = {
    'engine': (
        'This patch is over 600 lines because it states what every later '
        'patch builds on: the task-state registry (registry.py), one record '
        'for each of the 42 task states of nova saying who saves it, which '
        'instance actions and compute events prove its request arrived, '
        'which rule owns it, its legal vm_states and where recovery leaves '
        'it, from which every later patch derives its tables; the '
        'contracts of a rule and of a gate (contracts.py), whose docstrings '
        'say what each function must do and why; and the one object '
        'start-up recovery keeps on the compute manager (state.py). It '
        'changes no behaviour; more than half of it is documentation, data '
        'and the tests that tie the registry to nova. The generator rework '
        'of issue 18 splits it.'),
    'image': (
        'This patch is over 600 lines because it brings guest_facts, the '
        'small contract through which this rule and the rescue and resize '
        'rules ask the virt driver how far its own operation got: on '
        'libvirt, a cold snapshot is a managed save, and clearing the task '
        'without starting the guest from its saved memory would lose it at '
        'the next start. The contract, its libvirt implementation and '
        'their tests are about half of the patch; the fake driver and every '
        'other driver answer "cannot tell" and recover as upstream did.'),
    'queued': (
        'This patch is over 600 lines because its parts only work '
        'together: the evidence alone is dead code, the gate without the '
        'deferred sweep would leave an instance whose request was lost '
        'stuck forever, and the sweep needs the [recover] options. About '
        'two thirds of it are tests, most of them against a real '
        'nova-conductor and database (recovery_fixtures.py).'),
    'shelve': (
        'This patch is over 600 lines because it settles three operations '
        '(shelve, shelve offload and unshelve, the last also while it '
        'spawns an offloaded server) whose ends depend on each other: the '
        'shelved image that an interrupted offload needs is the one an '
        'interrupted unshelve must keep, and a shelve whose image was '
        'uploaded is finished with that image, which takes finding it '
        'safely in glance. More than half of it are tests.'),
    'resize': (
        'This patch is over 600 lines because undoing a move takes every '
        'step of finish_revert_resize, for six task states and for both '
        'the source and the destination host, and finishing a confirm '
        'that died on the source takes the same migration record; more '
        'than half of it are the tests of those cases, and splitting it '
        'would leave a resize that is reverted only halfway.'),
}

# The hooks in ComputeManager: {entry: [(old, new), ...]}, applied by that
# entry's patch.
MANAGER_EDITS = {
    'engine': [
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
    ('                self._update_scheduler_instance_info(context, '
     'instances)\n'
     '\n'
     '        # Revoke any Manila share access rules',
     '                self._update_scheduler_instance_info(context, '
     'instances)\n'
     '\n'
     '        # nova\'s own start-up step failed for an instance: fail, as '
     'without\n'
     '        # recovery, now that every other instance has been '
     'recovered.\n'
     '        startup_recovery_engine.raise_start_up_failure(self)\n'
     '\n'
     '        # Revoke any Manila share access rules'),
    ],
    # The sweep counts its grace from when the RPC servers started.
    'queued': [
        ('                                       startup=True)\n'
         '\n'
         '    def _get_power_state(self, instance):\n',
         '                                       startup=True)\n'
         '\n'
         '    def post_start_hook(self):\n'
         '        \"\"\"After the service started consuming its RPC queues.\n'
         '\n'
         '        Start-up recovery counts the grace of a request it left '
         'for the\n'
         '        queue from here: only now can such a request arrive.\n'
         '        \"\"\"\n'
         '        super().post_start_hook()\n'
         '        startup_recovery_engine.serving(self)\n'
         '\n'
         '    def _get_power_state(self, instance):\n'),
    ],
    # An evacuation to this host that died here names the source host,
    # so no _init_instance sees it: a pass over this host's migrations.
    'rebuild': [
        ('            self._error_out_instances_whose_build_was_interrupted(\n'
         '                context, already_handled, nodes_by_uuid.keys())\n',
         '            self._error_out_instances_whose_build_was_interrupted(\n'
         '                context, already_handled, nodes_by_uuid.keys())\n'
         '\n'
         '            # An evacuation to this host that died here: its '
         'instance still\n'
         '            # names the source host, so no _init_instance saw it.\n'
         '            startup_recovery_engine.recover_evacuations(self, '
         'context)\n'),
    ],
    # A confirm that died on this source shows no task_state, and its
    # instance is on the destination: a pass over this host's migrations.
    'resize': [
        ('            self._error_out_instances_whose_build_was_interrupted(\n'
         '                context, already_handled, nodes_by_uuid.keys())\n',
         '            self._error_out_instances_whose_build_was_interrupted(\n'
         '                context, already_handled, nodes_by_uuid.keys())\n'
         '\n'
         '            # A resize confirm that died on this source host shows '
         'no\n'
         '            # task_state, and its instance is on the destination.\n'
         '            startup_recovery_engine.recover_confirms(self, '
         'context)\n'),
    ],
    # engine.check_options and engine.summarize come with the controls.
    'controls': [
        ('        """Initialization for a standalone compute service."""\n'
         '\n'
         '        if CONF.pci.device_spec:\n',
         '        """Initialization for a standalone compute service."""\n'
         '\n'
         '        # Refuse wrong [recover] options before any instance is '
         'touched.\n'
         '        startup_recovery_engine.check_options()\n'
         '\n'
         '        if CONF.pci.device_spec:\n'),
        ('        finally:\n'
         '            if instances:\n'
         '                # We only send the instance info to the scheduler '
         'on startup\n',
         '        finally:\n'
         '            startup_recovery_engine.summarize(self)\n'
         '            if instances:\n'
         '                # We only send the instance info to the scheduler '
         'on startup\n'),
    ],
}

# The unit-test base class: nova_recover/tests/unit/base.py without the
# overlay. (old, new) replacements applied to its text. Statements of
# the base that use a module not yet in the tree (the evidence mocks,
# before the queued patch) are left out until that module lands.
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
# The test fixture module without the overlay: ProductionShape and what
# it needs, for nova's tree.
FIXTURE_EDITS = [
    ('import importlib\n', ''),
    ('import os\n', ''),
    ('\nimport nova_recover\n', ''),
    ('        sweep = importlib.import_module(\n'
     "            'nova.compute.startup_recovery.sweep' if native() else\n"
     "            'nova_recover.startup_recovery.sweep')\n", ''),
    ('        read_ahead = importlib.import_module(\n'
     "            'nova.compute.startup_recovery.read_ahead' if native() "
     "else\n"
     "            'nova_recover.startup_recovery.read_ahead')\n", ''),
]
# Top-level names of the fixture module that only the overlay needs.
FIXTURE_DROPPED = ('Overlay', 'native')
# Tests (methods or classes) that cannot run in nova's tree:
# {test module: {name: why}}.
TEST_DROPPED = {
    'controls': {
        'InitHostTestCase': "it tests the overlay's init_host wrapper",
    },
}
# Series entries a test module needs beyond what it imports: the image
# rules' glance clean-up tests run both image rules.
TEST_NEEDS = {
    'glance_cleanup': ('snapshot_pending',),
}
# Imports of the overlay's test helpers that nova's tree does without.
DROPPED_TEST_IMPORTS = {'nova_recover.tests.fixtures'}

# Existing nova tests whose stock behaviour a patch changes, fixed in that
# patch: {(entry, file): [reason, (old, new), ..., reason, (old, new)...]}.
# Each reason (a string) goes into the commit message with the tests its
# edits touch.
TEST_EDITS = {
    ('queued', TEST_MGR): [
        ('These tests run _init_instance without a database, so the gate '
         'could not read from the instance actions whether a request '
         'reached this host and would leave the instance for a request '
         'that may still be queued; what they test starts after the '
         'request reached this host, and the evidence now says so.'),
        ('        self.useFixture(fixtures.SpawnIsSynchronousFixture())\n'
         '        self.useFixture(fixtures.EventReporterStub())\n'
         '        self.allocations = {\n',
         '        self.useFixture(fixtures.SpawnIsSynchronousFixture())\n'
         '        self.useFixture(fixtures.EventReporterStub())\n'
         '        # Start-up recovery reads from the instance actions whether '
         'a\n'
         '        # request reached this host; here every one did.\n'
         '        self.useFixture(std_fixtures.MockPatchObject(\n'
         "            evidence, 'queued', return_value=False))\n"
         '        self.useFixture(std_fixtures.MockPatchObject(\n'
         "            evidence, 'close_interrupted', return_value=0))\n"
         '        self.allocations = {\n'),
    ],
    ('resize', TEST_INIT_HOST): [
        ('The interrupted cold migration is now reverted as '
         'finish_revert_resize would, so what the test marked as bug '
         '1836369 is fixed: the migration ends in error, the migration '
         'context, new flavor and stashed vm_state are gone and the '
         'allocations are back on the source host. The start-up log line '
         'is the rule\'s.'),
        ('        log_out = self.stdlog.logger.output\n'
         "        self.assertIn('Instance found in migrating state during "
         "startup. '\n"
         "                      'Resetting task_state', log_out)\n",
         '        log_out = self.stdlog.logger.output\n'
         "        self.assertIn('Resize interrupted by a nova-compute restart "
         "in '\n"
         "                      'resize_migrating, reverting it on the "
         "source host',\n"
         '                      log_out)\n'),
        ('        # The migration status should be "error" rather than stuck '
         'as\n'
         '        # "migrating".\n'
         '        context = nova_context.get_admin_context()\n'
         '        # FIXME(mriedem): This is bug 1836369 because we would '
         'normally expect\n'
         '        # Migration.get_by_instance_and_status to raise\n'
         '        # MigrationNotFoundByStatus since the status should be '
         '"error".\n'
         '        objects.Migration.get_by_instance_and_status(\n'
         "            context, server['id'], 'migrating')\n",
         '        # The migration status should be "error" rather than stuck '
         'as\n'
         '        # "migrating".\n'
         '        context = nova_context.get_admin_context()\n'
         '        self.assertRaises(\n'
         '            exception.MigrationNotFoundByStatus,\n'
         '            objects.Migration.get_by_instance_and_status,\n'
         "            context, server['id'], 'migrating')\n"),
        ('        # FIXME(mriedem): Leaving these fields set on the instance '
         'is\n'
         '        # bug 1836369.\n'
         '        self.assertIsNotNone(instance.migration_context)\n'
         '        self.assertIsNotNone(instance.new_flavor)\n'
         "        self.assertEqual('active', "
         "instance.system_metadata['old_vm_state'])\n",
         '        self.assertIsNone(instance.migration_context)\n'
         '        self.assertIsNone(instance.new_flavor)\n'
         "        self.assertNotIn('old_vm_state',\n"
         '                         instance.system_metadata)\n'),
        ('        # FIXME(mriedem): This is bug 1836369 because we orphaned '
         'the\n'
         '        # allocations created by the scheduler for the server on '
         'the dest host.\n'
         "        self.assertIn(server['id'], dest_allocations)\n",
         "        self.assertNotIn(server['id'], dest_allocations)\n"),
        ('        # FIXME(mriedem): This is bug 1836369 because the server is '
         'running on\n'
         '        # the source host but is not tracking allocations against '
         'the source\n'
         '        # host.\n'
         "        self.assertNotIn(server['id'], source_allocations)\n",
         "        self.assertIn(server['id'], source_allocations)\n"),
        ('from nova import context as nova_context\n',
         'from nova import context as nova_context\n'
         'from nova import exception\n'),
    ],
    ('build', TEST_MGR): [
        ('BUILDING and the build task states go to ERROR by compare-and-swap '
         'on the task state they were found in.'),
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
    ('image', TEST_MGR): [
        ("The rule records the guest's power state as it clears the task, so "
         'the mocked power state must be one.'),
        ('            self.compute._get_power_state = mock.Mock()\n'
         '            instance.info_cache = None\n'
         '            instance.power_state = power_state.RUNNING\n',
         '            self.compute._get_power_state = mock.Mock(\n'
         '                return_value=power_state.RUNNING)\n'
         '            instance.info_cache = None\n'
         '            instance.power_state = power_state.RUNNING\n'),
        ('The upload states are cleared by compare-and-swap.'),
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
    ('deleting', TEST_MGR): [
        ('A failed deletion now ends in ERROR with a fault, through the '
         'engine, instead of a log line only.'),
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
        ('ERROR is set by compare-and-swap on DELETING.'),
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
    ('deleting', TEST_COMPUTE): [
        ('The deleting rule reads the task state of an instance in '
         'vm_state DELETED to tell whose it is; an Instance that nova loads '
         'always has one, these two tests build theirs without it.'),
        ('        instance.id = 1\n'
         '        instance.vm_state = vm_states.DELETED\n'
         '        instance.deleted = False\n',
         '        instance.id = 1\n'
         '        instance.vm_state = vm_states.DELETED\n'
         '        instance.task_state = None\n'
         '        instance.deleted = False\n'),
        ('        instance.uuid = uuids.fake\n'
         '        instance.vm_state = vm_states.DELETED\n'
         '        instance.deleted = False\n',
         '        instance.uuid = uuids.fake\n'
         '        instance.vm_state = vm_states.DELETED\n'
         '        instance.task_state = None\n'
         '        instance.deleted = False\n'),
        ('A failed completion of a partial deletion now puts the instance '
         'in ERROR with an instance fault that says why, where stock nova '
         'only logged it.'),
        ('        mock_complete.side_effect = ValueError\n'
         '\n'
         '        self.compute._init_instance(admin_context, instance)\n'
         '\n'
         '        mock_complete.assert_called_once_with(admin_context, '
         'instance)\n',
         "        mock_complete.side_effect = ValueError('boom')\n"
         '\n'
         '        with test.nested(\n'
         "            mock.patch.object(instance, 'save'),\n"
         '            mock.patch.object(compute_utils, '
         "'add_instance_fault_from_exc'),\n"
         '        ) as (mock_save, mock_fault):\n'
         '            self.compute._init_instance(admin_context, instance)\n'
         '\n'
         '        mock_complete.assert_called_once_with(admin_context, '
         'instance)\n'
         '        # Start-up recovery does not just log the failure: it puts '
         'the\n'
         '        # instance in ERROR and records why as an instance fault.\n'
         '        mock_save.assert_called_once_with('
         'expected_task_state=[None])\n'
         '        self.assertEqual(vm_states.ERROR, instance.vm_state)\n'
         '        mock_fault.assert_called_once_with(admin_context, '
         'instance,\n'
         '                                           mock.ANY)\n'
         "        self.assertEqual('delete interrupted by nova-compute "
         "restart: boom',\n"
         '                         str(mock_fault.call_args[0][2]))\n'),
    ],
    ('snapshot_pending', TEST_MGR): [
        'The snapshot states are cleared by compare-and-swap.',
    ] + [
        ('        instance.task_state = task_states.%s\n'
         '        self._test_init_instance_cleans_image_states(instance)\n'
         % state,
         '        instance.task_state = task_states.%s\n'
         '        self._test_init_instance_cleans_image_states(\n'
         '            instance, expected_task_state=task_states.%s)\n'
         % (state, state))
        for state in ('IMAGE_SNAPSHOT', 'IMAGE_SNAPSHOT_PENDING')
    ],
    ('reboot', TEST_MGR): [
        ('A reboot that reached the driver and whose guest runs is settled '
         'by compare-and-swap; REBOOTING and REBOOTING_HARD never reached '
         'the driver, so they are rebooted again whatever the guest shows.'),
        ('    def _test_init_instance_cleans_reboot_state(self, instance):\n'
         '        instance.host = self.compute.host\n',
         '    def _test_init_instance_cleans_reboot_state(self, instance):\n'
         '        instance.host = self.compute.host\n'
         '        task_state = instance.task_state\n'
         '        vm_state = instance.vm_state\n'),
        ('            if instance.power_state == power_state.RUNNING:\n'
         '                instance_save.assert_called_once_with()\n',
         '            if (instance.power_state == power_state.RUNNING and\n'
         '                    task_state in (task_states.REBOOT_STARTED,\n'
         '                                   task_states.REBOOT_STARTED_HARD)'
         '):\n'
         '                instance_save.assert_called_once_with(\n'
         '                    expected_task_state=task_state)\n'),
        ('                reboot_instance.assert_has_calls([call])\n'
         '                self.assertEqual(vm_states.STOPPED, '
         'instance.vm_state)\n',
         '                reboot_instance.assert_has_calls([call])\n'
         '                self.assertEqual(vm_state, instance.vm_state)\n'),
    ],
    ('powering', TEST_MGR): [
        ('The stop is retried only for a guest that still runs, as the user '
         'asked it: a clean shutdown, under an action of its own.'),
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
         '                             clean_shutdown=True)\n'),
        ('            init_return = self.compute._init_instance('
         'self.context, instance)\n'
         '            call = mock.call(self.context, instance, True)\n',
         '            init_return = self.compute._init_instance('
         'self.context, instance)\n'
         '            call = mock.call(self.context, instance,\n'
         '                             clean_shutdown=True)\n'),
    ],
    ('rebuild', TEST_MGR): [
        ('An interrupted rebuild goes to ERROR by compare-and-swap.'),
        ('                self._test_init_instance_sets_building_error(\n'
         '                    vm_state, task_state)\n',
         '                self._test_init_instance_sets_building_error(\n'
         '                    vm_state, task_state,\n'
         '                    expected_task_state=task_state)\n'),
    ],
    ('pause', TEST_MGR): [
        ('A guest that runs is recorded ACTIVE by compare-and-swap, unless '
         'the request was a pause that had not reached it: that pause is '
         'run again.'),
        ('    @mock.patch.object(objects.Instance, \'save\')\n'
         '    def test_init_instance_cleans_running_pausing(self, '
         'mock_save):\n'
         '        instance = self._test_init_instance_cleans_task_states(\n'
         '            power_state.RUNNING, task_states.PAUSING)\n'
         '        mock_save.assert_called_once_with()\n'
         '        self.assertEqual(vm_states.ACTIVE, instance.vm_state)\n',
         "    @mock.patch('nova.compute.manager.ComputeManager."
         "pause_instance')\n"
         '    @mock.patch.object(objects.Instance, \'save\')\n'
         '    def test_init_instance_cleans_running_pausing(self, mock_save,\n'
         '                                                  mock_pause):\n'
         '        def fake_pause(context, instance):\n'
         '            instance.vm_state = vm_states.PAUSED\n'
         '            instance.task_state = None\n'
         '\n'
         '        mock_pause.side_effect = fake_pause\n'
         '        instance = self._test_init_instance_cleans_task_states(\n'
         '            power_state.RUNNING, task_states.PAUSING)\n'
         '        mock_pause.assert_called_once_with(mock.ANY, instance)\n'
         '        mock_save.assert_not_called()\n'
         '        self.assertEqual(vm_states.PAUSED, instance.vm_state)\n'),
    ] + [
        ('            power_state.RUNNING, task_states.%s)\n'
         '        mock_save.assert_called_once_with()\n' % state,
         '            power_state.RUNNING, task_states.%s)\n'
         '        mock_save.assert_called_once_with(\n'
         '            expected_task_state=task_states.%s)\n' % (state, state))
        for state in ('UNPAUSING',)
    ],
    ('resize', TEST_MGR): [
        ("RESIZE_MIGRATING is reverted on the migration's source host, and "
         'the rule also moves the source allocations back, drops the '
         'migration context and ends the migration in error.'),
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
        ('RESIZE_PREP without a migration record only clears the task state, '
         'by compare-and-swap.'),
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
    ('migrating', TEST_MGR): [
        ("Besides nova's reset, the rule reads the other migration records "
         'and keeps the instance ACTIVE only when its guest runs here.'),
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
    """Turn ``name.attr`` into mapping[attr]; fail on any other use.

    Only code is looked at: a string or comment that says name stays.
    """
    lines = text.splitlines(keepends=True)
    toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE,
                              tokenize.COMMENT, tokenize.INDENT,
                              tokenize.DEDENT)]
    edits = []
    for i, tok in enumerate(toks):
        if tok.type != tokenize.NAME or tok.string != name:
            continue
        if i and toks[i - 1].type == tokenize.OP and \
                toks[i - 1].string == '.':
            continue
        if not (i + 2 < len(toks) and toks[i + 1].string == '.' and
                toks[i + 2].type == tokenize.NAME):
            raise GenError('%s is used other than as %s.<attr>'
                           % (name, name))
        attr = toks[i + 2].string
        if attr not in mapping:
            raise GenError('%s.%s has no counterpart in nova' % (name, attr))
        if tok.start[0] != toks[i + 2].end[0]:
            raise GenError('%s.%s spans lines' % (name, attr))
        edits.append((tok.start, toks[i + 2].end, mapping[attr]))
    for (srow, scol), (erow, ecol), new in reversed(edits):
        line = lines[srow - 1]
        lines[srow - 1] = line[:scol] + new + line[ecol:]
    return ''.join(lines)


OVERLAY_IMPORT = re.compile(
    r'^([ \t]*)from nova_recover(?:\.(?:recovery|rules))? import (\w+)'
    r'((?: as \w+)?)$', re.M)
# The overlay's subpackages all land in one package of nova's tree.
SUBPACKAGE = re.compile(r'(?<![\w.])nova_recover\.(?:recovery|rules)\.')
OVERLAY_NAME = re.compile(r'(?<![\w.])nova_recover(?!\w)')


def overlay_deps(text):
    """The nova_recover modules that a module imports."""
    if re.search(r'^\s*import nova_recover', text, re.M):
        raise GenError('"import nova_recover..." cannot be rewritten; use '
                       '"from nova_recover import X"')
    return {m.group(2) for m in OVERLAY_IMPORT.finditer(text)}


def to_nova_module(text, edits=()):
    """A nova_recover module as it reads inside nova's tree."""
    for old, new in edits:
        text = replace_once(text, old, new, 'relocated module')
    pre, block, rest = split_imports(text)
    keep, moved, registered = [], [], []
    for line in block:
        match = OVERLAY_IMPORT.match(line.rstrip('\n'))
        if match and match.group(2) in RELOCATED:
            _path, package, name = RELOCATED[match.group(2)]
            moved.append('from %s import %s%s\n'
                         % (package, name,
                            match.group(3) or ' as ' + match.group(2)))
            registered.append((match.group(3) or
                               ' as ' + match.group(2)).split()[-1])
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
    rest = ''.join(rest)
    for alias in registered:
        # nova/conf/__init__.py registers the options of nova.conf.
        rest = re.sub(r'^%s\.register_opts\(CONF\)\n' % alias, '', rest,
                      flags=re.M)
    out = ''.join(pre + insert_imports(keep, moved)) + rest
    out = drop_unused_imports(out)
    out = OVERLAY_IMPORT.sub(r'\1from %s import \2\3' % MODULE, out)
    out = SUBPACKAGE.sub(MODULE + '.', out)
    out = re.sub(r'(?<![\w.])nova_recover\.(?!tests)', MODULE + '.', out)
    if OVERLAY_NAME.search(out):
        raise GenError('nova_recover left after the rewrite')
    return out


class _Collect(object):
    """A pyflakes reporter that keeps the messages."""

    def __init__(self):
        self.messages = []

    def flake(self, message):
        self.messages.append(message)

    def unexpectedError(self, filename, msg):
        raise GenError('pyflakes: %s' % msg)

    def syntaxError(self, filename, msg, lineno, offset, text):
        raise GenError('pyflakes: line %s: %s' % (lineno, msg))


def drop_unused_imports(text):
    """Drop the single-line imports that pyflakes finds unused.

    A rewrite that leaves out code (a relocated registration, a dropped
    test, the overlay's fixture) may leave its import behind.
    """
    reporter = _Collect()
    pyflakes_api.check(text, 'generated', reporter)
    unused = {m.lineno for m in reporter.messages
              if isinstance(m, pyflakes_messages.UnusedImport)}
    if not unused:
        return text
    lines = text.splitlines(keepends=True)
    for lineno in sorted(unused, reverse=True):
        if not lines[lineno - 1].startswith(('import ', 'from ')):
            raise GenError('unused import at line %d is not one line'
                           % lineno)
        del lines[lineno - 1]
    out = ''.join(lines)
    # An import group left empty leaves two blank lines behind.
    return re.sub(r'\n\n\n(?=(?:import|from) )', '\n\n', out)


# engine._nova_start_up in the framework patch: nova's own path with
# nothing caught, as before the series.
FRAMEWORK_START_UP = '''\
def _nova_start_up(manager, default, context, instance):
    \"\"\"Nova's own start-up of one instance, as before this package.

    The first recovery rule keeps a failure here until the end of
    init_host (raise_start_up_failure), so that the other instances are
    recovered first.
    \"\"\"
    default(context, instance)'''


def engine_for(text, modules):
    """engine.py with only the rules and gates added so far.

    Returns (nova's engine.py, the overlay modules it imports, the names
    of RULES and GATES in the overlay's engine).
    """
    listed, stripped, rules = set(), set(), []
    for tuple_name in ('GATES', 'RULES'):
        found = re.search(r'^%s = \(\n((?:    \w+,\n)*)\)\n' % tuple_name,
                          text, re.M)
        if not found:
            raise GenError('engine.py: %s tuple not found' % tuple_name)
        names = re.findall(r'    (\w+),\n', found.group(1))
        listed.update(names)
        if tuple_name == 'RULES':
            rules = [name for name in names if name in modules]
        kept = ''.join('    %s,\n' % n for n in names if n in modules)
        text = text[:found.start(1)] + kept + text[found.end(1):]
        for name in names:
            if name not in modules:
                stripped.add(name)
                text = re.sub(r'^from nova_recover\.(?:rules|recovery) '
                              r'import %s\n' % name, '', text, count=1,
                              flags=re.M)
    # A function of the engine that uses a rule or gate left out goes
    # with it (engine.check_options comes with the controls).
    unused = [node.name for node in ast.parse(text).body
              if isinstance(node, ast.FunctionDef) and
              any(isinstance(n, ast.Name) and n.id in stripped
                  for n in ast.walk(node))]
    if unused:
        # A dropped function at the end leaves its blank lines behind.
        text = drop_toplevel(text, unused, 'engine.py').rstrip('\n') + '\n'
    if not rules:
        # The framework patch changes no behaviour: without a rule,
        # nova's exception still leaves init_host as it always did.
        found = re.search(r'^def _nova_start_up\(.*?(?=\n\n\n|\Z)', text,
                          re.M | re.S)
        if not found:
            raise GenError('engine.py: _nova_start_up not found')
        text = text[:found.start()] + FRAMEWORK_START_UP + \
            text[found.end():]
    missing = set(modules) - listed - {'engine'}
    if missing:
        raise GenError('engine.RULES and GATES lack %s' % sorted(missing))
    return to_nova_module(text), overlay_deps(text), listed


def import_closure(name):
    """The overlay modules that a module imports, directly or not."""
    seen, todo = set(), [name]
    while todo:
        for dep in overlay_deps(read(source_path(todo.pop()))):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def source_path(name):
    """Where an overlay module lives: rules/, recovery/ or the top."""
    for sub in ('rules', 'recovery', ''):
        path = os.path.join(TOP, 'nova_recover', sub, name + '.py')
        if os.path.exists(path):
            return path
    return os.path.join(TOP, 'nova_recover', name + '.py')


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

    def merge(self, source, where, base_names=None, edits=(),
              replace=None):
        """Append a test module's body, merging its imports.

        base_names maps names of nova_recover.tests.unit.base to the
        names the base class got in nova's file. With replace (a body
        merged before), the new body takes its place instead of being
        appended. Returns (the names it defines, the body as merged).
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
                    target = SUBPACKAGE.sub(MODULE + '.', target)
                    if target.startswith('nova_recover'):
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
        body_text = SUBPACKAGE.sub(MODULE + '.', body_text)
        body_text = re.sub(r'(?<![\w.])nova_recover\.(?!tests)',
                           MODULE + '.', body_text)
        if OVERLAY_NAME.search(body_text):
            raise GenError('%s: nova_recover left after the rewrite' % where)
        if replace is None:
            body_text = self._drop_repeated_constants(body_text, top)
        defined = set()
        for node in ast.parse(body_text).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets
                               if isinstance(t, ast.Name))
        clash = defined & top
        if clash and replace is None:
            raise GenError('%s: %s already defined in %s'
                           % (where, sorted(clash), TEST_MGR))
        pre, block, rest = split_imports(self.text)
        text = ''.join(pre + insert_imports(block, new_imports) + rest)
        if replace is None:
            self.text = text.rstrip('\n') + '\n\n\n' + body_text
        else:
            self.text = replace_once(text, replace, body_text, where)
        return defined, body_text

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
    beyond the blueprint has a paragraph 'Beyond ...' (or 'Related
    upstream: ...', naming a change it only relates to) instead: its
    summary line is the subject, and origin is None.
    """
    doc = ast.get_docstring(ast.parse(read(path)), clean=True)
    if not doc:
        raise GenError('%s has no module docstring' % path)
    paragraphs = [p.strip() for p in doc.split('\n\n') if p.strip()]
    summary = paragraphs[0]
    mirrors = [p for p in paragraphs if p.startswith('Mirrors')]
    subject = ' '.join(summary.split()).rstrip('.')
    if not mirrors:
        if not any(p.startswith(('Beyond', 'Related upstream'))
                   for p in paragraphs):
            raise GenError('%s: no "Mirrors ...", "Beyond ..." or "Related '
                           'upstream: ..." paragraph in the docstring'
                           % path)
        return subject, summary, None, paragraphs[1:]
    origin = ' '.join(mirrors[0].split())
    if not re.match(r'Mirrors "([^"]+)"', origin):
        raise GenError('%s: the "Mirrors" paragraph quotes no subject'
                       % path)
    # The subject says what this patch does; the upstream change it
    # continues is named in the header (Origin), never posed as.
    rest = [p for p in paragraphs[1:] if p is not mirrors[0]]
    return subject, summary, origin[len('Mirrors '):], rest


def dep3_field(name, paragraphs):
    """A DEP-3 field, continuation lines indented, empty lines as ' .'."""
    lines = []
    for i, para in enumerate(paragraphs):
        if i:
            lines.append(' .')
        # A bulleted list keeps one item to a line.
        items = re.split(r'\n(?=\* )', para.strip())
        for j, item in enumerate(items):
            bullet = item.startswith('* ')
            lines.extend(textwrap.wrap(
                ' '.join(item.split()), 72, break_on_hyphens=False,
                break_long_words=False,
                initial_indent='%s: ' % name if not i and not j else ' ',
                subsequent_indent='   ' if bullet else ' '))
    return '\n'.join(lines)


Upstream = collections.namedtuple(
    'Upstream', ['subjects', 'commits', 'change_ids', 'reviews', 'bugs'])


def upstream_refs(text):
    """What a "Mirrors" (or "Related upstream") paragraph names."""
    text = ' '.join(text.split())
    reviews = []
    for group in re.findall(r'reviews? (\d+(?:(?:, | and )\d+)*)', text):
        reviews.extend(re.findall(r'\d+', group))
    return Upstream(
        subjects=re.findall(r'"([^"]+)"', text),
        commits=re.findall(r'nova commit ([0-9a-f]{7,40})', text),
        change_ids=re.findall(r'Change-Id (I[0-9a-f]{40})', text),
        reviews=reviews,
        bugs=re.findall(r'(?:Closes-Bug|Partial-Bug|[Bb]ug) (\d{6,})',
                        text))


class Patch(object):
    """One entry of SERIES as the generator made it."""

    def __init__(self, number, entry):
        self.number = number
        self.entry = entry
        self.subject = self.summary = self.origin = None
        self.paragraphs = []
        self.modules = []          # overlay modules this patch brings
        self.tests = []            # test modules this patch brings
        self.test_notes = []       # [(reason, file, [tests])]
        self.numstat = []          # [(added, deleted, path)]
        self.needs = set()         # earlier entries this patch needs
        self.filename = None

    @property
    def lines(self):
        return sum(a + d for a, d, _ in self.numstat)

    def describe(self):
        """Take subject, description and origin from the module."""
        if self.entry in MESSAGES:
            self.subject, self.paragraphs, self.origin = \
                MESSAGES[self.entry]
            self.summary = self.paragraphs[0]
            self.paragraphs = self.paragraphs[1:]
            return
        subject, summary, origin, rest = docstring_parts(
            source_path(self.entry))
        self.subject = SUBJECTS.get(self.entry, subject)
        self.summary, self.origin = summary, origin
        self.paragraphs = rest + EXTRA_PARAGRAPHS.get(self.entry, [])

    def paragraph(self, *starts):
        for para in [self.summary] + self.paragraphs:
            if para.startswith(starts):
                return ' '.join(para.split())
        return None

    def message(self):
        description = [self.summary] + self.paragraphs
        if self.lines > SIZE_LIMIT:
            if self.entry not in SIZE_NOTES:
                raise GenError(
                    'patch %d (%s) changes %d lines, over %d; say why in '
                    'SIZE_NOTES' % (self.number, self.entry, self.lines,
                                    SIZE_LIMIT))
            description.append(SIZE_NOTES[self.entry])
        for reason, where, names in self.test_notes:
            description.append('Changes nova test%s in %s: %s. Why: %s'
                               % ('s' if len(names) > 1 else '', where,
                                  ', '.join(names), reason))
        fields = [dep3_field('Description', description),
                  'Author: %s <%s>' % (AUTHOR_NAME, AUTHOR_EMAIL)]
        if self.origin is None:
            # Our own change, no upstream counterpart (the description
            # says so).
            fields.append('Origin: vendor')
        else:
            # Ours too: the upstream change it continues was written for
            # the nova of 2014, and is named so that nobody takes this
            # patch for a backport of it.
            fields.append(dep3_field(
                'Origin', ['vendor, continues upstream ' + self.origin]))
            for bug in upstream_refs(self.origin).bugs:
                fields.append('Bug: https://bugs.launchpad.net/nova/+bug/%s'
                              % bug)
        # A behaviour change that nova has not been asked to take.
        fields.append('Forwarded: no')
        fields.append('Last-Update: %s' % LAST_UPDATE)
        return '\n'.join([self.subject, ''] + fields + [''])


# --- tests -------------------------------------------------------------------

def test_sources():
    """{name: path} of the unit tests of rules and mechanism."""
    found = {}
    for sub in ('rules', 'recovery'):
        folder = os.path.join(TOP, 'nova_recover', 'tests', 'unit', sub)
        for name in sorted(os.listdir(folder)):
            if name.startswith('test_') and name.endswith('.py'):
                found[name[len('test_'):-len('.py')]] = os.path.join(
                    folder, name)
    return found


def imported_modules(text):
    """{bound name: overlay module} for a module's top-level imports."""
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, target in import_target(node):
                match = re.match(
                    r'nova_recover(?:\.(?:recovery|rules))?\.(\w+)$', target)
                if match and match.group(1) != 'tests':
                    found[name] = match.group(1)
    return found


def uses_fixtures(text):
    return any(target in DROPPED_TEST_IMPORTS
               for node in ast.parse(text).body
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for _, target in import_target(node))


def drop_statements(text, names):
    """Drop, from every function, the statements that use names.

    Also drops their imports and the comment lines just above them.
    """
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    drop = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                name in names for name, _ in import_target(node)):
            if len(node.names) != 1:
                raise GenError('cannot drop one name of %r'
                               % lines[node.lineno - 1])
            drop.update(range(node.lineno - 1, node.end_lineno))
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        kept = 0
        for stmt in node.body:
            if not any(isinstance(n, ast.Name) and n.id in names
                       for n in ast.walk(stmt)):
                kept += 1
                continue
            first = stmt.lineno - 1
            while first > 0 and lines[first - 1].strip().startswith('#'):
                first -= 1
            drop.update(range(first, stmt.end_lineno))
        if not kept:
            raise GenError('%s would be left empty' % node.name)
    return ''.join(line for i, line in enumerate(lines) if i not in drop)


def drop_functions(text, names, where):
    """Drop methods or classes (with their decorators) by name."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    drop = set()
    found = set()
    for node in ast.walk(tree):
        if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and
                node.name in names):
            found.add(node.name)
            first = min([node.lineno] + [d.lineno for d in
                                         node.decorator_list]) - 1
            while first > 0 and not lines[first - 1].strip():
                first -= 1
            drop.update(range(first, node.end_lineno))
    missing = set(names) - found
    if missing:
        raise GenError('%s: no test %s to drop' % (where, sorted(missing)))
    return ''.join(line for i, line in enumerate(lines) if i not in drop)


def drop_toplevel(text, names, where):
    """Drop top-level classes and functions by name."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    drop = set()
    found = set()
    for node in tree.body:
        if (isinstance(node, (ast.ClassDef, ast.FunctionDef)) and
                node.name in names):
            found.add(node.name)
            first = min([node.lineno] + [d.lineno for d in
                                         node.decorator_list]) - 1
            end = node.end_lineno
            while end < len(lines) and not lines[end].strip():
                end += 1
            drop.update(range(first, end))
    missing = set(names) - found
    if missing:
        raise GenError('%s: no %s to drop' % (where, sorted(missing)))
    return ''.join(line for i, line in enumerate(lines) if i not in drop)


def nova_fixtures():
    """nova_recover/tests/fixtures.py as a test helper of nova's tree."""
    path = os.path.join(TOP, 'nova_recover', 'tests', 'fixtures.py')
    text = read(path)
    for old, new in FIXTURE_EDITS:
        text = replace_once(text, old, new, path)
    text = drop_toplevel(text, FIXTURE_DROPPED, path)
    pre, block, rest = split_imports(text)
    block = insert_imports(
        block, ['from %s import read_ahead\n' % MODULE,
                'from %s import sweep\n' % MODULE])
    text = drop_unused_imports(''.join(pre + block + rest))
    if OVERLAY_NAME.search(text):
        raise GenError('%s: nova_recover left after the rewrite' % path)
    return text


def nova_test_module(name, text):
    """A test module that uses the fixtures, as a module of nova's tree."""
    where = 'tests/unit/recovery/test_%s.py' % name
    aliases = [alias for node in ast.parse(text).body
               if isinstance(node, ast.ImportFrom)
               for alias, target in import_target(node)
               if target in DROPPED_TEST_IMPORTS]
    if 'nova_recover.tests.unit.base' in text:
        raise GenError('%s: uses the test base and the fixtures at once'
                       % where)
    for alias in aliases:
        text = re.sub(r'^[ \t]*self\.useFixture\(%s\.Overlay\(\)\)\n'
                      % alias, '', text, flags=re.M)
        if re.search(r'%s\.(Overlay|native)\b' % alias, text):
            raise GenError('%s: uses the overlay fixture otherwise than '
                           'as self.useFixture(%s.Overlay())'
                           % (where, alias))
        text = re.sub(r'^from nova_recover\.tests import fixtures as %s\n'
                      % alias, '', text, flags=re.M)
    pre, block, rest = split_imports(to_nova_module(text))
    package, _, module = FIXTURES_MODULE.rpartition('.')
    block = insert_imports(block, ['from %s import %s as %s\n'
                                   % (package, module, alias)
                                   for alias in aliases])
    return ''.join(pre + block + rest)


def edited_tests(text, old):
    """Class.method names around each place old is found in text."""
    pos = text.index(old)
    before = text[:pos]
    cls = re.findall(r'^class (\w+)', before, re.M)
    if not cls:
        return None
    func = re.findall(r'^    def (\w+)', before, re.M)
    # The edit may start at the def line itself.
    here = re.match(r'\s*(?:@.*\n\s*)*def (\w+)', old)
    name = here.group(1) if here else (func[-1] if func else '?')
    return '%s.%s' % (cls[-1] if cls else '?', name)


def edits_of(entry, path):
    """[(reason, [(old, new)])] of TEST_EDITS for one entry and file."""
    groups = []
    for item in TEST_EDITS.get((entry, path), ()):
        if isinstance(item, str):
            groups.append((item, []))
        elif not groups:
            raise GenError('TEST_EDITS[%r, %r]: an edit without a reason'
                           % (entry, path))
        else:
            groups[-1][1].append(item)
    return groups


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


def check_series():
    if not SERIES or SERIES[0] != 'engine':
        raise GenError('SERIES must start with the framework, engine')
    for entry in SERIES:
        if not os.path.exists(source_path(entry)):
            raise GenError('%s is listed but does not exist'
                           % source_path(entry))
    for entry, path in TEST_EDITS:
        if not os.path.exists(source_path(entry)):
            raise GenError('TEST_EDITS names %s, which does not exist'
                           % entry)


class Tree(object):
    """nova's tree as the series builds it, patch by patch."""

    def __init__(self, tree):
        self.tree = tree
        self.tests = TestFile(read(os.path.join(tree, TEST_MGR)))
        self.in_tree = set()       # overlay modules written so far
        self.placed = {}           # test module -> entry
        self.base = None           # (merged body, modules left out)
        self.base_names = None
        self.owner = {}            # overlay module -> entry
        self.engine_src = read(source_path('engine'))
        self.engine_listed = set()

    def path(self, rel):
        return os.path.join(self.tree, rel)

    def edit(self, rel, edits, where):
        text = read(self.path(rel))
        for old, new in edits:
            text = replace_once(text, old, new, where)
        write(self.path(rel), text)

    def add_modules(self, patch, todo, added):
        changed = []
        while todo:
            name = todo.pop(0)
            if name in self.in_tree:
                continue
            if name in SERIES and name not in added:
                raise GenError('patch %d (%s) needs %s, which comes later '
                               'in SERIES' % (patch.number, patch.entry,
                                              name))
            path = source_path(name)
            if not os.path.exists(path):
                raise GenError('%s is imported but does not exist' % path)
            text = read(path)
            target = RELOCATED.get(name, (os.path.join(PACKAGE,
                                                       name + '.py'),))[0]
            write(self.path(target),
                  to_nova_module(text, RELOCATED_EDITS.get(name, ())))
            changed.append(target)
            for rel, edits in RELOCATED_TREE_EDITS.get(name, {}).items():
                self.edit(rel, edits, '%s (%s)' % (rel, name))
                changed.append(rel)
            self.in_tree.add(name)
            self.owner[name] = patch.entry
            patch.modules.append(name)
            todo.extend(sorted(overlay_deps(text)))
        return changed

    def merge_base(self):
        """Merge the test base, leaving out what is not in the tree yet."""
        src = read(os.path.join(TOP, 'nova_recover', 'tests', 'unit',
                                'base.py'))
        for old, new in TEST_BASE_EDITS:
            src = replace_once(src, old, new, 'tests/unit/base.py')
        missing = {m for m in imported_modules(src).values()
                   if m not in self.in_tree}
        names = {n for n, m in imported_modules(src).items()
                 if m in missing}
        gated = drop_statements(src, names) if names else src
        if self.base is None:
            defined, body = self.tests.merge(gated, 'tests/unit/base.py')
            self.base_names = {name: name for name in defined}
        elif missing != self.base[1]:
            defined, body = self.tests.merge(gated, 'tests/unit/base.py',
                                             replace=self.base[0])
        else:
            return False
        self.base = (body, missing)
        return True

    def place_tests(self, patch, added):
        """Merge or add the test modules whose modules are all here."""
        changed = []
        sources = test_sources()
        order = sorted(sources, key=lambda n: (n != patch.entry, n))
        for name in order:
            if name in self.placed:
                continue
            text = read(sources[name])
            if TEST_DROPPED.get(name):
                text = drop_unused_imports(drop_functions(
                    text, TEST_DROPPED[name],
                    'tests/unit/*/test_%s.py' % name))
            deps = set(imported_modules(text).values())
            needs = set(TEST_NEEDS.get(name, ()))
            for need in needs:
                if need not in SERIES:
                    raise GenError('tests of %s need %s, which is not in '
                                   'SERIES' % (name, need))
            if name not in self.in_tree:
                continue
            missing = (deps - self.in_tree) | (needs - set(added))
            if missing:
                # The engine's own tests exercise the rules and the gate,
                # so they come with the last patch they need.
                if name == patch.entry and name != 'engine':
                    raise GenError('tests/unit/*/test_%s.py needs %s, which '
                                   'patch %d does not bring'
                                   % (name, sorted(missing), patch.number))
                continue
            self.placed[name] = patch.entry
            patch.tests.append(name)
            own = import_closure(patch.entry) if patch.entry != 'engine' \
                else set(FRAMEWORK)
            patch.needs.update(d if d in SERIES else self.owner.get(d, d)
                               for d in deps if d in SERIES or d not in own)
            patch.needs.update(needs)
            if uses_fixtures(text):
                if not os.path.exists(self.path(FIXTURES)):
                    write(self.path(FIXTURES), nova_fixtures())
                    changed.append(FIXTURES)
                rel = TEST_MODULE % name
                write(self.path(rel), nova_test_module(name, text))
                changed.append(rel)
                continue
            if 'nova_recover.tests.unit import base' in text and \
                    self.base is None:
                self.merge_base()
            self.tests.merge(text, 'tests/unit/test_%s.py' % name,
                             base_names=self.base_names)
            changed.append(TEST_MGR)
        return changed

    def apply_test_edits(self, patch):
        changed = []
        files = sorted({path for entry, path in TEST_EDITS
                        if entry == patch.entry})
        for rel in files:
            if rel == TEST_MGR:
                text = self.tests.text
            else:
                text = read(self.path(rel))
            for reason, edits in edits_of(patch.entry, rel):
                names = []
                for old, new in edits:
                    if text.count(old) == 1:
                        name = edited_tests(text, old)
                        if name and name not in names:
                            names.append(name)
                    text = replace_once(text, old, new,
                                        '%s (%s)' % (rel, patch.entry))
                patch.test_notes.append(
                    (reason, os.path.basename(rel), names))
            if rel == TEST_MGR:
                self.tests.text = text
            else:
                write(self.path(rel), text)
            changed.append(rel)
        return changed


def build_series(tarball, out, workdir, keep_tree=None):
    """Build the series in a git tree under workdir; write it to out.

    Returns the Patch records, in order.
    """
    check_sha(tarball)
    check_series()
    tree = unpack(tarball, workdir)
    git(tree, 'init', '-q')
    git(tree, 'add', '-A', '-f', '.')
    git(tree, 'commit', '-q', '-m', 'nova %s, as released' % NOVA_VERSION)

    state = Tree(tree)
    added = []
    patches = []
    for n, entry in enumerate(SERIES):
        patch = Patch(n + 1, entry)
        patch.describe()
        added.append(entry)
        changed = []
        engine, engine_deps, listed = engine_for(state.engine_src, added)
        if entry == 'engine':
            write(state.path(os.path.join(PACKAGE, '__init__.py')), INIT_PY)
            changed.append(os.path.join(PACKAGE, '__init__.py'))
            todo = list(FRAMEWORK)
            state.owner['engine'] = entry
            state.in_tree.add('engine')
        else:
            if entry not in listed:
                raise GenError('%s is in SERIES but in neither engine.RULES '
                               'nor engine.GATES' % entry)
            todo = [entry]
        if entry in MANAGER_EDITS:
            state.edit(MANAGER, MANAGER_EDITS[entry],
                       '%s (%s)' % (MANAGER, entry))
            changed.append(MANAGER)
        changed += state.add_modules(patch, todo + sorted(engine_deps),
                                     added)
        write(state.path(os.path.join(PACKAGE, 'engine.py')), engine)
        changed.append(os.path.join(PACKAGE, 'engine.py'))
        if entry != 'engine':
            patch.needs.add('engine')
        if entry != 'engine':
            # A helper the module imports comes along if its first user
            # is dropped; only other entries are needs.
            patch.needs.update(d for d in import_closure(entry)
                               if d in SERIES)
        changed += state.apply_test_edits(patch)
        if state.base is not None and state.merge_base():
            changed.append(TEST_MGR)
        changed += state.place_tests(patch, added)
        write(state.path(TEST_MGR), state.tests.text)
        git(tree, 'add', '-f', *sorted(set(changed)))
        for line in git(tree, 'diff', '--cached', '--numstat').splitlines():
            plus, minus, path = line.split('\t')
            patch.numstat.append((int(plus), int(minus), path))
        patch.needs = {need for need in patch.needs
                       if need in SERIES and need != entry}
        git(tree, 'commit', '-q', '-F', '-', input=patch.message())
        patches.append(patch)

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
    for patch, name in zip(patches, names):
        patch.filename = name
    write(os.path.join(out, 'series'), ''.join(n + '\n' for n in names))
    if keep_tree:
        shutil.rmtree(keep_tree, ignore_errors=True)
        shutil.copytree(tree, keep_tree, symlinks=True)
    return patches


# --- doc/source/review.rst -------------------------------------------------

REVIEW_HEAD = """\
..
  Generated by tools/gen_patches.py from the same data as patches/;
  do not edit (tools/gen_patches.py --check fails when it drifts).

============
Patch review
============

One row per patch of ``patches/``, in series order. *Continues* names
the upstream change of the 2013 blueprint that a patch carries on
(subject, Change-Id, Gerrit review); the code is this project's, written
for nova 34, so every ``Origin:`` is ``vendor`` and every subject says
what the patch itself does. *Lines* counts added plus removed lines,
tests included. *Drop alone* says whether the patch can be left out
by deleting its line from ``SERIES`` in ``tools/gen_patches.py`` and
regenerating (the generated patches themselves all touch
``engine.py`` and ``test_compute_mgr.py`` and so only apply in order).

"""


def _cell(text):
    return ' '.join(str(text).split())


def upstream_changes(text):
    """'"subject" (Change-Id, Gerrit, commit)' for each change text names."""
    out = []
    for subject, details in re.findall(r'"([^"]+)"\s*\(([^)]*)\)',
                                       ' '.join(text.split())):
        ref = upstream_refs(details)
        out.append('"%s" (%s)' % (subject, ', '.join(
            ['Change-Id %s' % c for c in ref.change_ids] +
            ['Gerrit %s' % r for r in ref.reviews] +
            ['nova commit %s' % c for c in ref.commits])))
    if not out:
        raise GenError('no upstream change found in %r' % text)
    return ' and '.join(out)


def review_rows(patches):
    needed_by = collections.defaultdict(list)
    for patch in patches:
        for need in patch.needs:
            needed_by[need].append(patch)
    rows = []
    for patch in patches:
        if patch.origin:
            mirrors = upstream_changes(patch.origin)
        else:
            related = patch.paragraph('Related upstream')
            mirrors = 'beyond the blueprint'
            if related:
                mirrors += '; related: ' + upstream_changes(related)
        files = [os.path.basename(path) if path.startswith(
                     (PACKAGE + '/', TEST_DIR + '/')) else path
                 for _, _, path in patch.numstat]
        changes = '%s Files: %s.' % (
            patch.summary, ', '.join('``%s``' % f for f in files))
        for reason, where, names in patch.test_notes:
            changes += ' Changes %s in %s: %s' % (
                ', '.join(names), where, reason)
        differs = (patch.paragraph('Differs') or
                   patch.paragraph('Beyond', 'In this patch') or
                   patch.paragraph('Related upstream') or '')
        dependents = needed_by.get(patch.entry, [])
        if patch.entry == 'engine':
            drop = 'No: every other patch builds on it.'
        elif not dependents:
            drop = 'Yes: no other patch needs it.'
        else:
            drop = 'Only with %s, which need%s it.' % (
                ', '.join('%04d (%s)' % (p.number, p.entry)
                          for p in dependents),
                's' if len(dependents) == 1 else '')
        needs = sorted(patch.needs - {'engine'},
                       key=SERIES.index)
        if needs:
            drop += ' Needs %s.' % ', '.join(
                '%04d (%s)' % (SERIES.index(n) + 1, n) for n in needs)
        rows.append(['%04d %s' % (patch.number, patch.subject), mirrors,
                     changes, str(patch.lines), differs, drop])
    return rows


def review_doc(patches):
    out = [REVIEW_HEAD]
    out.append('.. list-table::\n'
               '   :header-rows: 1\n'
               '   :widths: 14 16 26 5 25 14\n\n')
    header = ['Patch', 'Continues', 'What it changes in nova', 'Lines',
              'How it differs from the original, and why', 'Drop alone']
    for row in [header] + review_rows(patches):
        for i, cell in enumerate(row):
            lead = '   * - ' if i == 0 else '     - '
            wrapped = textwrap.wrap(_cell(cell), 66,
                                    break_on_hyphens=False,
                                    break_long_words=False) or ['']
            out.append(lead + wrapped[0] + '\n')
            for line in wrapped[1:]:
                out.append('       ' + line + '\n')
    total = sum(p.lines for p in patches)
    out.append('\n%d patches, %d changed lines in all.\n'
               % (len(patches), total))
    return ''.join(out)


def check(tarball, out, review=REVIEW_DOC):
    """Regenerate into a temporary directory and compare with out."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, 'patches')
        patches = build_series(tarball, fresh, os.path.join(tmp, 'work'))
        write(os.path.join(tmp, 'review.rst'), review_doc(patches))
        pairs = [(os.path.join(out, name), os.path.join(fresh, name),
                  'patches/' + name)
                 for name in sorted(set(os.listdir(fresh)) |
                                    {n for n in os.listdir(out)
                                     if n.endswith('.patch') or
                                     n == 'series'})]
        pairs.append((review, os.path.join(tmp, 'review.rst'),
                      os.path.relpath(review, TOP)))
        drift = []
        for a, b, label in pairs:
            old = read(a).splitlines(True) if os.path.exists(a) else []
            new = read(b).splitlines(True) if os.path.exists(b) else []
            if old != new:
                drift.extend(difflib.unified_diff(
                    old, new, label, 'regenerated/' + label))
        if drift:
            sys.stdout.writelines(drift)
            print('gen_patches: patches/ or %s is out of date; run '
                  'tools/gen_patches.py' % os.path.relpath(review, TOP),
                  file=sys.stderr)
            return 1
    print('gen_patches: patches/ and %s match the overlay (%d patches)'
          % (os.path.relpath(review, TOP), len(SERIES)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('tarball', nargs='?',
                        help='nova-%s sdist (default: pip download into '
                             '.work/sdist)' % NOVA_VERSION)
    parser.add_argument('--out', default=os.path.join(TOP, 'patches'))
    parser.add_argument('--review', default=REVIEW_DOC,
                        help='the review table to write or check')
    parser.add_argument('--check', action='store_true',
                        help='fail if patches/ or the review table differs '
                             'from a fresh run')
    parser.add_argument('--keep-tree', metavar='DIR',
                        help='also copy the patched git tree to DIR')
    args = parser.parse_args(argv)
    try:
        tarball = args.tarball or fetch_sdist()
        if args.check:
            return check(tarball, args.out, args.review)
        with tempfile.TemporaryDirectory() as tmp:
            patches = build_series(tarball, args.out, tmp, args.keep_tree)
        write(args.review, review_doc(patches))
        for patch in patches:
            print('%s  %4d lines' % (os.path.join(os.path.relpath(args.out),
                                                  patch.filename),
                                     patch.lines))
    except GenError as exc:
        print('gen_patches: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
