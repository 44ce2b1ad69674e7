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

"""Copy the one recovery package into nova's tree as a patch series.

nova_recover/startup_recovery/ is written once, with relative imports
inside, so that it is at the same time the overlay's package and patched
nova's nova/compute/startup_recovery/. This tool builds
patches/<release>/ (a quilt and ``git am`` series) from it on the
release's pinned nova sdist (tools/patches/releases.py), one patch per
entry of tools/patches/series.py:

* it copies the entry's package modules and files byte for byte;
* it copies the entry's tests into nova/tests/unit/compute/
  startup_recovery/, mapping the overlay's module names to nova's
  (TEST_NAMES) and leaving out the overlay's own fixture
  (OVERLAY_FIXTURE_LINES), and nothing else;
* it writes order.py with the lines of the rules and gates that are in
  the tree so far (order.py names one module per line for that);
* it applies the release's integration diff of the entry, a plain patch
  kept in tools/patches/integration/<release>/;
* and commits, with a DEP-3 header made from the module's docstring.

At the end, the package in the tree must equal the overlay's, file for
file. ``--check`` rebuilds into a temporary directory and fails when the
result differs from patches/<release>/ or, for 2026.2, from
doc/source/review.rst. Every release's series is the same list of
patches; only the integration diffs are the release's own.
"""

import argparse
import ast
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tools', 'patches'))

import dep3  # noqa: E402
import releases  # noqa: E402
import review  # noqa: E402
import series  # noqa: E402

GenError = dep3.GenError

CACHE = os.path.join(TOP, '.work', 'sdist')
# The review table is 2026.2's: the older series hold the same patches,
# with only their integration diffs' context changed.
REVIEW_DOC = os.path.join(TOP, 'doc', 'source', 'review.rst')


def select(name=None):
    """Make the release (tools/patches/releases.py) the one built.

    The functions below read these names; main() calls this once.
    """
    global RELEASE, NOVA_VERSION, SDIST, SDIST_SHA256, INTEGRATION
    release = releases.get(name)
    RELEASE = release.name
    NOVA_VERSION = release.nova
    SDIST = 'nova-%s.tar.gz' % NOVA_VERSION
    SDIST_SHA256 = release.sha256
    INTEGRATION = os.path.join(TOP, 'tools', 'patches', 'integration',
                               RELEASE)


select()

SOURCE = os.path.join(TOP, 'nova_recover', 'startup_recovery')
PACKAGE = 'nova/compute/startup_recovery'
TESTS = os.path.join(TOP, 'nova_recover', 'tests')
TEST_PACKAGE = 'nova/tests/unit/compute/startup_recovery'

# The overlay's module names in its tests and nova's, in this order
# (longest first where one is a prefix of another).
TEST_NAMES = [
    ('nova_recover.startup_recovery', 'nova.compute.startup_recovery'),
    ('from nova_recover.tests.unit import base',
     'from nova.tests.unit.compute.startup_recovery import base'),
    ('from nova_recover.tests import fixtures',
     'from nova.tests.unit.compute.startup_recovery import fixtures'),
    ('nova_recover.tests.unit.recovery',
     'nova.tests.unit.compute.startup_recovery'),
    ('nova_recover.tests.unit.rules',
     'nova.tests.unit.compute.startup_recovery.rules'),
]
# Patched nova routes _init_instance itself: the overlay's fixture and its
# import are left out of the copies, and any other use of it is an error.
OVERLAY_FIXTURE_LINES = re.compile(
    r'^(?:from nova_recover\.tests import overlay_fixtures\n|'
    r'[ \t]*self\.useFixture\(overlay_fixtures\.Overlay\(\)\)\n)', re.M)

AUTHOR_NAME = 'Seed 29edaf8a maintainers'
AUTHOR_EMAIL = 'maintainers@users.noreply.r-seed-29edaf8a.example'
# Fixed so that regenerating is byte-stable; bump it by hand when the
# series changes meaningfully.
LAST_UPDATE = '2026-12-04'
GIT_DATE = LAST_UPDATE + 'T12:00:00+0000'
# About as much as a reviewer reads as one change, tests included.
SIZE_LIMIT = 600
# Why a patch is over SIZE_LIMIT; the build fails for a bigger patch
# without a note here.
SIZE_NOTES = {}


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


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
    if sha256(path) != SDIST_SHA256:
        raise GenError('%s: sha256 %s, expected %s'
                       % (path, sha256(path), SDIST_SHA256))
    return path


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


# --- what is copied where --------------------------------------------------

def package_modules():
    """Every module of the package, as 'name' or 'rules/name'."""
    found = []
    for folder, _, names in os.walk(SOURCE):
        for name in names:
            if name.endswith('.py'):
                rel = os.path.relpath(os.path.join(folder, name), SOURCE)
                found.append(rel[:-3])
    return sorted(found)


def test_source(test):
    return os.path.join(TESTS, test + '.py')


def test_target(test):
    """Where a test module of nova_recover/tests lands in nova's tree."""
    if test == 'fixtures':
        return TEST_PACKAGE + '/fixtures.py'
    if test == 'unit/base':
        return TEST_PACKAGE + '/base.py'
    for folder, sub in (('unit/recovery/', ''), ('unit/rules/', 'rules/')):
        if test.startswith(folder):
            return '%s/%s%s.py' % (TEST_PACKAGE, sub,
                                   test[len(folder):])
    raise GenError('%s: no place for it in nova\'s tree' % test)


def import_key(line):
    """hacking H306's sort key: 'from a import b' sorts as 'a.b'."""
    words = line.split()
    if words[0] == 'from':
        return ('%s.%s' % (words[1], words[3])).lower()
    return words[1].lower()


def _is_import(line):
    return line.startswith(('from ', 'import '))


def merge_nova_imports(text, where):
    """One sorted run of imports from the first nova import on.

    The overlay's tests import nova first and the package second, in
    two groups; once mapped, both are nova's, and hacking (H306) wants
    consecutive imports in alphabetical order.
    """
    lines = text.splitlines(True)
    first = last = None
    for i, line in enumerate(lines):
        if _is_import(line):
            if first is None and re.match(r'(from|import) nova\b', line):
                first = i
            last = i
        elif line.strip() and not line.startswith('#') and last is not None:
            break
    if first is None:
        return text
    block = lines[first:last + 1]
    if any(line.strip() and not _is_import(line) for line in block):
        raise GenError('%s: something else among the imports' % where)
    imports = sorted((line for line in block if line.strip()),
                     key=import_key)
    return ''.join(lines[:first] + imports + lines[last + 1:])


def nova_test(test):
    """A test module of the overlay as nova's tree carries it."""
    text = read(test_source(test))
    text = OVERLAY_FIXTURE_LINES.sub('', text)
    if 'overlay_fixtures' in text:
        raise GenError('%s uses overlay_fixtures otherwise than as '
                       'self.useFixture(overlay_fixtures.Overlay())' % test)
    for old, new in TEST_NAMES:
        text = text.replace(old, new)
    if 'nova_recover' in text:
        line = next(li for li in text.splitlines() if 'nova_recover' in li)
        raise GenError('%s: nova_recover is left after the mapping: %r'
                       % (test, line.strip()))
    return merge_nova_imports(text, test)


def order_for(text, present, where):
    """order.py naming only the modules in the tree.

    order.py keeps each module on a line of its own, so leaving one out
    is leaving out its lines: its import, and its entries in the lists.
    """
    names = {name.rsplit('/', 1)[-1] for name in package_modules()}
    absent = names - present
    # The docstring's words are prose, not names.
    code_from = ast.parse(text).body[0].end_lineno
    kept = []
    for number, line in enumerate(text.splitlines(True), 1):
        named = set(re.findall(r'\b(\w+)\b', line.split('#')[0])) & absent
        if number <= code_from or not named:
            kept.append(line)
            continue
        if not re.match(r'(from \.\S* import \w+\n|    .*,\n)$', line):
            raise GenError('%s: %r names %s, which is not in the tree, and '
                           'is neither an import nor a list entry'
                           % (where, line, sorted(named)))
    return ''.join(kept)


def relative_imports(text, module):
    """The package modules a module imports relatively."""
    package = module.split('/')[:-1]
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            if node.module:
                base = base + node.module.split('.')
            for alias in node.names:
                found.add('/'.join(base + [alias.name]))
    return found


def nova_imports(text, prefix):
    """The modules under prefix that a mapped test module imports."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module == prefix or
                node.module.startswith(prefix + '.')):
            rest = node.module[len(prefix):].lstrip('.')
            for alias in node.names:
                found.add('/'.join(filter(None, rest.split('.') +
                                          [alias.name])))
    return found


# --- the series ------------------------------------------------------------

def integration(name):
    path = os.path.join(INTEGRATION, name + '.diff')
    return path if os.path.exists(path) else None


def integration_notes(path):
    """The paragraphs ahead of the diff: what it changes in nova's tests."""
    head = read(path).split('\ndiff --git ', 1)[0]
    if head.startswith('diff --git '):
        return []
    return [' '.join(p.split()) for p in head.split('\n\n') if p.strip()]


class Built(object):
    """One patch as the build made it."""

    def __init__(self, number, item):
        self.number = number
        self.entry = item.name
        self.item = item
        self.numstat = []
        self.needs = set()
        self.notes = []
        self.filename = None
        if item.modules:
            source = os.path.join(SOURCE, item.modules[0] + '.py')
        elif item.tests:
            source = test_source(item.tests[0])
        else:
            source = os.path.join(TOP, series.FILES[item.files[0]][0])
        self.subject, self.summary, self.origin, self.paragraphs = \
            dep3.docstring_parts(source)
        if item.subject:
            self.subject = item.subject

    @property
    def lines(self):
        return sum(a + d for a, d, _ in self.numstat)

    def paragraph(self, *starts):
        for para in [self.summary] + self.paragraphs:
            if para.startswith(starts):
                return ' '.join(para.split())
        return None

    def message(self):
        description = [self.summary] + self.paragraphs + self.notes
        if self.lines > SIZE_LIMIT:
            if self.entry not in SIZE_NOTES:
                raise GenError('patch %d (%s) changes %d lines, over %d; '
                               'say why in SIZE_NOTES'
                               % (self.number, self.entry, self.lines,
                                  SIZE_LIMIT))
            description.append(SIZE_NOTES[self.entry])
        return dep3.dep3_message(self.subject, description, self.origin,
                            AUTHOR_NAME, AUTHOR_EMAIL, LAST_UPDATE)


class Tree(object):
    """nova's tree as the series builds it."""

    def __init__(self, tree):
        self.tree = tree
        self.modules = set()     # package modules copied so far
        self.owner = {}          # package module or test -> entry
        self.copied = set()      # overlay files copied byte for byte

    def path(self, rel):
        return os.path.join(self.tree, rel)

    def copy_module(self, built, module):
        source = os.path.join(SOURCE, module + '.py')
        text = read(source)
        if 'nova_recover' in text:
            raise GenError('%s names nova_recover, which patched nova has '
                           'not' % source)
        if module != 'order':
            write(self.path('%s/%s.py' % (PACKAGE, module)), text)
        self.modules.add(module)
        self.owner[module] = built.entry
        return '%s/%s.py' % (PACKAGE, module)

    def check_imports(self, built, modules):
        """What the entry's modules import is in the tree by now.

        order.py is written with what is there, so it imports nothing
        that is not.
        """
        for module in modules:
            if module == 'order':
                continue
            wanted = relative_imports(
                read(os.path.join(SOURCE, module + '.py')), module)
            unknown = wanted - set(package_modules())
            if unknown:
                raise GenError('%s imports %s, which is not in the package'
                               % (module, sorted(unknown)))
            if wanted - self.modules:
                raise GenError('%s (patch %d) imports %s, which come later'
                               % (module, built.number,
                                  sorted(wanted - self.modules)))
            built.needs.update(self.owner[dep] for dep in wanted)

    def write_order(self):
        if 'order' not in self.modules:
            return []
        present = {m.rsplit('/', 1)[-1] for m in self.modules}
        text = order_for(read(os.path.join(SOURCE, 'order.py')), present,
                         'order.py')
        write(self.path(PACKAGE + '/order.py'), text)
        return [PACKAGE + '/order.py']

    def copy_test(self, built, test):
        text = nova_test(test)
        target = test_target(test)
        needed = (nova_imports(text, 'nova.compute.startup_recovery') |
                  {'test/' + t for t in nova_imports(
                      text, 'nova.tests.unit.compute.startup_recovery')})
        have = self.modules | {'test/' + t for t in self.tests_in_tree()}
        missing = needed - have
        if missing:
            raise GenError('%s (patch %d) needs %s, not in the tree yet'
                           % (test, built.number, sorted(missing)))
        for dep in needed:
            owner = self.owner.get(dep[5:] if dep.startswith('test/')
                                   else dep)
            if owner:
                built.needs.add(owner)
        changed = [target]
        for init in (TEST_PACKAGE + '/__init__.py',
                     TEST_PACKAGE + '/rules/__init__.py'):
            if (target.startswith(os.path.dirname(init) + '/') and
                    not os.path.exists(self.path(init))):
                write(self.path(init), '')
                changed.append(init)
        write(self.path(target), text)
        name = os.path.relpath(target, TEST_PACKAGE)[:-3].replace('/', '.')
        self.owner[name.replace('.', '/')] = built.entry
        return changed

    def tests_in_tree(self):
        found = set()
        root = self.path(TEST_PACKAGE)
        for folder, _, names in os.walk(root):
            for name in names:
                if name.endswith('.py'):
                    rel = os.path.relpath(os.path.join(folder, name), root)
                    found.add(rel[:-3])
        return found

    def apply(self, built, path, refresh=False):
        if refresh:
            self.refresh(path)
        git(self.tree, 'apply', '--index', '--whitespace=nowarn', path)
        built.notes.extend(integration_notes(path))

    def refresh(self, path):
        """Carry an integration diff over to this release's nova.

        Applies it with the fuzz that patch allows by default and writes
        back, after its paragraphs, the exact diff of the files it
        touches. A hunk that does not apply even so fails the build,
        naming the diff: that one is edited by hand.
        """
        text = read(path)
        head = text.split('diff --git ', 1)[0]
        files = sorted(set(re.findall(r'^diff --git a/(\S+)', text, re.M)))
        done = subprocess.run(
            ['patch', '-p1', '--no-backup-if-mismatch', '-i', path],
            cwd=self.tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        if done.returncode:
            raise GenError('%s does not apply to nova %s:\n%s'
                           % (os.path.relpath(path, TOP), NOVA_VERSION,
                              done.stdout))
        diff = git(self.tree, 'diff', '--', *files)
        git(self.tree, 'checkout', '--', *files)
        write(path, head + diff)


def build_series(tarball, out, workdir, keep_tree=None, refresh=False):
    """Build the series in a git tree under workdir; write it to out.

    With refresh, every integration diff is first carried over to the
    release's nova (Tree.refresh). Returns the Built records, in order.
    """
    if sha256(tarball) != SDIST_SHA256:
        raise GenError('%s is not the nova %s sdist' % (tarball,
                                                        NOVA_VERSION))
    tree = unpack(tarball, workdir)
    git(tree, 'init', '-q')
    git(tree, 'add', '-A', '-f', '.')
    git(tree, 'commit', '-q', '-m', 'nova %s, as released' % NOVA_VERSION)
    state = Tree(tree)
    built_all = []
    placed = set()
    for number, item in enumerate(series.SERIES, 1):
        built = Built(number, item)
        changed = []
        for module in item.modules:
            if module in state.modules:
                raise GenError('%s is copied twice' % module)
            changed.append(state.copy_module(built, module))
        state.check_imports(built, item.modules)
        changed += state.write_order()
        for key in item.files:
            source, target = series.FILES[key]
            write(state.path(target), read(os.path.join(TOP, source)))
            state.owner[key] = built.entry
            changed.append(target)
        for test in item.tests:
            if test in placed:
                raise GenError('%s is placed twice' % test)
            placed.add(test)
            changed += state.copy_test(built, test)
        git(tree, 'add', '-f', *sorted(set(changed)))
        if integration(item.name):
            state.apply(built, integration(item.name), refresh)
        for line in git(tree, 'diff', '--cached', '--numstat').splitlines():
            plus, minus, path = line.split('\t')
            built.numstat.append((int(plus), int(minus), path))
        built.needs.discard(built.entry)
        git(tree, 'commit', '-q', '-F', '-', input=built.message())
        built_all.append(built)
    check_complete(state, placed)
    if os.path.exists(out):
        for name in os.listdir(out):
            if name.endswith('.patch') or name == 'series':
                os.unlink(os.path.join(out, name))
    os.makedirs(out, exist_ok=True)
    git(tree, 'format-patch', '-q', '--no-signature', '--zero-commit',
        '--no-numbered', '-o', out, 'HEAD~%d' % len(series.SERIES))
    names = sorted(n for n in os.listdir(out) if n.endswith('.patch'))
    if len(names) != len(series.SERIES):
        raise GenError('format-patch wrote %d patches for %d entries'
                       % (len(names), len(series.SERIES)))
    for built, name in zip(built_all, names):
        built.filename = name
    write(os.path.join(out, 'series'), ''.join(n + '\n' for n in names))
    if keep_tree:
        shutil.rmtree(keep_tree, ignore_errors=True)
        shutil.copytree(tree, keep_tree, symlinks=True)
    return built_all


def check_complete(state, placed):
    """The tree's package is the overlay's; every unit test is placed."""
    missing = set(package_modules()) - state.modules
    if missing:
        raise GenError('no entry copies %s' % sorted(missing))
    for module in package_modules():
        ours = read(os.path.join(SOURCE, module + '.py'))
        theirs = read(state.path('%s/%s.py' % (PACKAGE, module)))
        if ours != theirs:
            raise GenError('%s differs from the overlay\'s after the last '
                           'patch' % module)
    for source, target in series.FILES.values():
        if read(os.path.join(TOP, source)) != read(state.path(target)):
            raise GenError('%s differs from %s' % (target, source))
    unit = {os.path.relpath(os.path.join(folder, name), TESTS)[:-3]
            for folder, _, names in os.walk(os.path.join(TESTS, 'unit'))
            for name in names
            if name.startswith('test_') and name.endswith('.py') and
            os.path.basename(folder) in ('recovery', 'rules')}
    if unit - placed:
        raise GenError('no entry places %s' % sorted(unit - placed))


def check(tarball, out, review_path=None):
    """Regenerate into a temporary directory and compare with out.

    review_path, when given, is compared too (the default release's).
    """
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, 'patches')
        built = build_series(tarball, fresh, os.path.join(tmp, 'work'))
        label = os.path.relpath(out, TOP)
        pairs = [(os.path.join(out, name), os.path.join(fresh, name),
                  '%s/%s' % (label, name))
                 for name in sorted(set(os.listdir(fresh)) |
                                    {n for n in os.listdir(out)
                                     if n.endswith('.patch') or
                                     n == 'series'})]
        if review_path:
            write(os.path.join(tmp, 'review.rst'), review.document(built))
            pairs.append((review_path, os.path.join(tmp, 'review.rst'),
                          os.path.relpath(review_path, TOP)))
        drift = []
        for a, b, name in pairs:
            old = read(a).splitlines(True) if os.path.exists(a) else []
            new = read(b).splitlines(True) if os.path.exists(b) else []
            if old != new:
                drift.extend(difflib.unified_diff(
                    old, new, name, 'regenerated/' + name))
        if drift:
            sys.stdout.writelines(drift)
            print('gen_patches: %s is out of date; run tools/gen_patches.py '
                  '--release %s' % (label, RELEASE), file=sys.stderr)
            return 1
    print('gen_patches: %s%s: as a fresh build makes it (%d patches, '
          'nova %s)'
          % (label, ' and %s' % os.path.relpath(review_path, TOP)
             if review_path else '', len(series.SERIES), NOVA_VERSION))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('tarball', nargs='?',
                        help="the release's nova sdist (default: pip "
                             'download into .work/sdist)')
    parser.add_argument('--release', default=releases.DEFAULT,
                        choices=list(releases.RELEASES),
                        help='the stable series to build for (default '
                             '%(default)s)')
    parser.add_argument('--out',
                        help='default: patches/<release>')
    parser.add_argument('--review',
                        help='the review table to write or check (default: '
                             'doc/source/review.rst for %s, none for the '
                             'other releases)' % releases.DEFAULT)
    parser.add_argument('--refresh-integration', action='store_true',
                        help="carry tools/patches/integration/<release>/ "
                             "over to the release's nova first (a new point "
                             'release): apply each diff with fuzz and write '
                             'back the exact diff')
    parser.add_argument('--check', action='store_true',
                        help='fail if patches/ or the review table differs '
                             'from a fresh run')
    parser.add_argument('--keep-tree', metavar='DIR',
                        help='also copy the patched git tree to DIR, to '
                             'edit an integration diff there')
    args = parser.parse_args(argv)
    select(args.release)
    out = args.out or os.path.join(TOP, 'patches', RELEASE)
    review_path = args.review or (REVIEW_DOC if RELEASE == releases.DEFAULT
                                  else None)
    try:
        tarball = args.tarball or fetch_sdist()
        if args.check:
            return check(tarball, out, review_path)
        with tempfile.TemporaryDirectory() as tmp:
            built = build_series(tarball, out, tmp, args.keep_tree,
                                 args.refresh_integration)
        if review_path:
            write(review_path, review.document(built))
        for patch in built:
            print('%s  %4d lines' % (os.path.join(os.path.relpath(out),
                                                  patch.filename),
                                     patch.lines))
    except (GenError, subprocess.CalledProcessError) as exc:
        print('gen_patches: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
