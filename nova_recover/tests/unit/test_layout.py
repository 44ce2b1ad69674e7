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

"""What the package may import: no database, no cycles.

nova-compute has no database (nova/cmd/compute.py forbids it and
compute nodes hold no credentials), so neither the overlay nor the
recovery package that patches/<release>/ adds to nova may import
nova.db. The rules are policy and import only the shared helpers; the mechanism
imports one way, order -> rules and gates -> base -> registry and
state, and the engine names no rule (order.py does).
"""

import ast
import os
import re

from nova import test

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                   '..'))
PACKAGE = os.path.join(TOP, 'nova_recover')
PATCHES = os.path.join(TOP, 'patches')
RECOVERY_PACKAGE = 'nova/compute/startup_recovery/'


def _modules():
    """{dotted name: path} of the package's own code, tests left out."""
    found = {}
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d not in ('tests', '__pycache__')]
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, TOP)[:-3].replace(os.sep, '.')
                found[rel[:-len('.__init__')] if rel.endswith('__init__')
                      else rel] = path
    return found


def _imports(source, known=(), package=''):
    """The modules that the import statements of source name.

    ``from package import module`` names the module when it is one of
    known, the package otherwise. Relative imports are resolved against
    package, the dotted name of the package the source belongs to.
    """
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - (node.level - 1)]
                module = '.'.join(base + ([module] if module else []))
            if not module:
                continue
            for alias in node.names:
                full = '%s.%s' % (module, alias.name)
                names.add(full if full in known or not known
                          else module)
    return names


def _reads_database(names):
    return sorted(n for n in names if n == 'nova.db' or
                  n.startswith('nova.db.'))


class LayoutTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.modules = _modules()
        self.deps = {}
        for name, path in self.modules.items():
            package = (name if path.endswith('__init__.py')
                       else name.rpartition('.')[0])
            with open(path) as f:
                self.deps[name] = {
                    n for n in _imports(f.read(), self.modules, package)
                    if n in self.modules}

    def test_no_module_imports_the_database(self):
        for name, path in self.modules.items():
            with open(path) as f:
                self.assertEqual([], _reads_database(_imports(f.read())),
                                 name)

    def test_patched_recovery_package_imports_no_database(self):
        """The same holds for what every release's series adds."""
        checked = 0
        for release in sorted(os.listdir(PATCHES)):
            folder = os.path.join(PATCHES, release)
            for patch in sorted(os.listdir(folder)):
                if not patch.endswith('.patch'):
                    continue
                with open(os.path.join(folder, patch)) as f:
                    text = f.read()
                for part in re.split(r'^diff --git ', text, flags=re.M)[1:]:
                    path = part.split(' ', 1)[0][len('a/'):]
                    if not path.startswith(RECOVERY_PACKAGE):
                        continue
                    added = [line[1:] for line in part.splitlines()
                             if line.startswith('+') and
                             not line.startswith('+++')]
                    imports = [line for line in added
                               if re.match(r'\s*(from|import)\s+nova\.db\b',
                                           line)]
                    self.assertEqual([], imports,
                                     '%s/%s: %s' % (release, patch, path))
                    checked += 1
        self.assertGreater(checked, 0)

    def test_rules_import_no_mechanism_but_the_shared_helpers(self):
        allowed = {'nova_recover.startup_recovery.base',
                   'nova_recover.startup_recovery.contracts',
                   'nova_recover.startup_recovery.registry',
                   'nova_recover.startup_recovery.glance_cleanup',
                   'nova_recover.startup_recovery.guest_facts'}
        for name, deps in self.deps.items():
            if not name.startswith('nova_recover.startup_recovery.rules.'):
                continue
            # Another rule's helpers are policy too (snapshot clears as
            # image_upload does; shelve offloads as shelve_offload does).
            mechanism = {d for d in deps
                         if d.startswith('nova_recover.startup_recovery') and
                         not d.startswith(
                             'nova_recover.startup_recovery.rules.')}
            self.assertEqual(set(), mechanism - allowed, name)

    def test_no_import_cycle(self):
        def visit(name, path):
            for dep in sorted(self.deps.get(name, ())):
                self.assertNotIn(dep, path, ' -> '.join(path + [dep]))
                visit(dep, path + [dep])

        for name in sorted(self.modules):
            visit(name, [name])

    def test_relative_imports_are_seen(self):
        """The checks above would pass on nothing if they missed them."""
        self.assertIn('nova_recover.startup_recovery.base',
                      self.deps['nova_recover.startup_recovery.rules.build'])
        self.assertIn('nova_recover.startup_recovery.order',
                      self.deps['nova_recover.startup_recovery.engine'])

    def test_engine_names_no_rule_or_gate(self):
        deps = self.deps['nova_recover.startup_recovery.engine']
        self.assertEqual(
            set(), {d for d in deps if '.rules.' in d or d.endswith(
                ('.controls', '.queued'))})
