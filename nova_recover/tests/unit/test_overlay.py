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

import functools
import importlib
import inspect
import sys
import threading
from unittest import mock

import fixtures

from nova.cmd import compute as nova_compute
from nova.compute import manager
from nova import manager as nova_manager
from nova import service as nova_service
from nova import test

import nova_recover
from nova_recover.cmd import compute as recover_compute
from nova_recover import overlay
from nova_recover.startup_recovery import controls
from nova_recover.startup_recovery import engine
from nova_recover.startup_recovery import host_passes

CM = manager.ComputeManager


class OverlayTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.assertFalse(nova_recover.is_installed())
        self.nova_original = CM.__dict__['_init_instance']
        self.nova_hook = CM.__dict__.get('post_start_hook')
        self.addCleanup(self._restore)

    def _restore(self):
        nova_recover.uninstall()
        CM._init_instance = self.nova_original
        if self.nova_hook is None:
            if 'post_start_hook' in CM.__dict__:
                del CM.post_start_hook
        else:
            CM.post_start_hook = self.nova_hook

    def _current(self):
        return CM.__dict__['_init_instance']

    def test_install_and_uninstall(self):
        nova_recover.install()
        self.assertTrue(nova_recover.is_installed())
        wrapper = self._current()
        self.assertIsNot(self.nova_original, wrapper)
        self.assertIs(self.nova_original, wrapper.__wrapped__)
        self.assertIs(self.nova_original, overlay.original())
        nova_recover.uninstall()
        self.assertFalse(nova_recover.is_installed())
        self.assertIs(self.nova_original, self._current())

    def test_uninstall_without_install_changes_nothing(self):
        nova_recover.uninstall()
        nova_recover.uninstall()
        self.assertIs(self.nova_original, self._current())

    def test_install_is_idempotent(self):
        with mock.patch.object(overlay, '_wrap',
                               wraps=overlay._wrap) as mock_wrap:
            nova_recover.install()
            wrapper = self._current()
            nova_recover.install()
        self.assertIs(wrapper, self._current())
        mock_wrap.assert_called_once_with(self.nova_original)
        # The original was saved once, and never as our own wrapper.
        self.assertIs(self.nova_original, overlay.original())

    def test_concurrent_installs_make_one_wrapper(self):
        barrier = threading.Barrier(8)
        seen = []

        def install():
            barrier.wait()
            nova_recover.install()
            seen.append(self._current())

        with mock.patch.object(overlay, '_wrap',
                               wraps=overlay._wrap) as mock_wrap:
            threads = [threading.Thread(target=install) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        mock_wrap.assert_called_once_with(self.nova_original)
        self.assertEqual(8, len(seen))
        self.assertEqual(1, len(set(map(id, seen))))
        self.assertIs(self.nova_original, self._current().__wrapped__)

    def test_wrapper_keeps_signature(self):
        nova_recover.install()
        wrapper = self._current()
        for sig in (inspect.signature(wrapper),
                    inspect.signature(wrapper, follow_wrapped=False)):
            self.assertEqual(('self', 'context', 'instance'),
                             tuple(sig.parameters))
        self.assertEqual('_init_instance', wrapper.__name__)

    def test_uninstall_leaves_a_wrapper_on_top(self):
        """Someone who wrapped us (with functools.wraps, which copies our

        mark) keeps their wrapper: pulling ours out from under it would
        drop theirs too.
        """
        nova_recover.install()
        ours = self._current()

        @functools.wraps(ours)
        def theirs(self, context, instance):
            return ours(self, context, instance)

        CM._init_instance = theirs
        self.assertFalse(nova_recover.is_installed())
        nova_recover.uninstall()
        self.assertIs(theirs, self._current())

    def test_reinstall_wraps_what_is_there_now(self):
        nova_recover.install()
        nova_recover.uninstall()

        def theirs(self, context, instance):
            pass

        CM._init_instance = theirs
        nova_recover.install()
        self.assertIs(theirs, self._current().__wrapped__)
        nova_recover.uninstall()
        self.assertIs(theirs, self._current())

    # --- post_start_hook: when nova started the RPC server(s) ---------

    def _hook(self):
        return CM.__dict__.get('post_start_hook')

    def test_post_start_hook_is_inherited(self):
        """What install() relies on: nova's ComputeManager has none."""
        self.assertIsNone(self.nova_hook)
        self.assertIs(nova_manager.Manager.post_start_hook,
                      CM.post_start_hook)

    def test_service_starts_the_rpc_server_before_the_hook(self):
        source = inspect.getsource(nova_service.Service.start)
        hook = source.index('self.manager.post_start_hook()')
        self.assertLess(source.index('self.rpcserver.start()'), hook)
        if 'self.rpcserver_alt' in source:
            # nova 33 and 34 also start a second server (compute-alt).
            self.assertLess(source.index('self.rpcserver_alt.start()'),
                            hook)
        self.assertLess(
            source.index('self.manager.init_host(self.service_ref)'), hook)

    def test_post_start_hook_installed_and_uninstalled(self):
        inherited = nova_manager.Manager.post_start_hook
        nova_recover.install()
        wrapper = self._hook()
        self.assertTrue(overlay._is_ours(wrapper))
        self.assertIs(inherited, wrapper.__wrapped__)
        for sig in (inspect.signature(wrapper),
                    inspect.signature(wrapper, follow_wrapped=False)):
            self.assertEqual(('self',), tuple(sig.parameters))
        self.assertEqual('post_start_hook', wrapper.__name__)
        nova_recover.uninstall()
        # Inherited again, as before: no copy left on ComputeManager.
        self.assertNotIn('post_start_hook', CM.__dict__)
        self.assertIs(inherited, CM.post_start_hook)

    def test_post_start_hook_tells_the_engine_then_runs_nova(self):
        calls = []

        def post_start_hook(self):
            calls.append(('nova', self))

        CM.post_start_hook = post_start_hook
        nova_recover.install()
        with mock.patch.object(
                engine, 'serving',
                side_effect=lambda m: calls.append(('serving', m))):
            self.assertIsNone(CM.post_start_hook(mock.sentinel.manager))
        self.assertEqual([('serving', mock.sentinel.manager),
                          ('nova', mock.sentinel.manager)], calls)
        # A post_start_hook of ComputeManager's own is put back.
        nova_recover.uninstall()
        self.assertIs(post_start_hook, self._hook())

    def test_post_start_hook_calls_sweep_serving(self):
        nova_recover.install()
        fake = mock.Mock(spec=[])
        with mock.patch(
                'nova_recover.startup_recovery.sweep.serving') as serving:
            CM.post_start_hook(fake)
        serving.assert_called_once_with(fake)

    def test_install_twice_wraps_the_hook_once(self):
        nova_recover.install()
        wrapper = self._hook()
        nova_recover.install()
        self.assertIs(wrapper, self._hook())

    def test_uninstall_leaves_a_hook_wrapper_on_top(self):
        nova_recover.install()
        ours = self._hook()

        @functools.wraps(ours)
        def theirs(self):
            return ours(self)

        CM.post_start_hook = theirs
        nova_recover.uninstall()
        self.assertIs(theirs, self._hook())

    def test_refused_for_unexpected_post_start_hook_signature(self):
        def post_start_hook(self, service_ref):
            pass

        CM.post_start_hook = post_start_hook
        init_host = CM.__dict__['init_host']
        self._assert_refused('ComputeManager.post_start_hook')
        # Nothing was touched, init_host included.
        self.assertIs(post_start_hook, self._hook())
        self.assertIs(init_host, CM.__dict__['init_host'])

    def _assert_refused(self, text):
        before = self._current()
        saved = overlay.original()
        ex = self.assertRaises(nova_recover.InstallRefused,
                               nova_recover.install)
        self.assertIn(text, str(ex))
        self.assertIs(before, self._current())
        self.assertIs(saved, overlay.original())
        self.assertFalse(nova_recover.is_installed())

    def test_refused_when_nova_missing(self):
        with mock.patch.dict(sys.modules, {'nova.compute.manager': None}):
            self._assert_refused('nova is not importable')

    def test_refused_when_import_fails(self):
        real = importlib.import_module

        def import_module(name, *args):
            if name.startswith('nova'):
                raise ImportError('No module named %s' % name)
            return real(name, *args)

        with mock.patch.object(importlib, 'import_module',
                               side_effect=import_module):
            self._assert_refused('nova is not importable')
            self.assertFalse(nova_recover.is_installed())

    def test_refused_for_older_nova(self):
        with mock.patch.object(overlay, '_nova_version',
                               return_value=((30, 2, 0), '30.2.0')):
            self._assert_refused('nova 30.2.0 is not supported')

    def test_refused_for_newer_nova(self):
        with mock.patch.object(overlay, '_nova_version',
                               return_value=((35, 0, 0), '35.0.0')):
            self._assert_refused('nova 35.0.0 is not supported')

    def test_installed_nova_is_supported(self):
        version, _text = overlay._nova_version()
        low, high = overlay.SUPPORTED_NOVA
        self.assertTrue(low <= version < high)

    def test_refused_for_unexpected_signature(self):
        def _init_instance(self, context, instance, retry=False):
            pass

        CM._init_instance = _init_instance
        self._assert_refused('does not have the expected signature')

    def test_refused_for_unexpected_signature_after_reinstall(self):
        nova_recover.install()
        nova_recover.uninstall()

        def _init_instance(self, ctxt, instance):
            pass

        CM._init_instance = _init_instance
        self._assert_refused('does not have the expected signature')


class ConsoleScriptTestCase(test.NoDBTestCase):
    """nova-compute-recover: nova's monkey patching, install, nova's main."""

    def setUp(self):
        super().setUp()
        self.addCleanup(nova_recover.uninstall)

    def test_main_installs_before_nova_starts(self):
        events = []
        real_import = importlib.import_module

        def import_module(name, *args):
            events.append('import ' + name)
            return real_import(name, *args)

        def nova_main():
            events.append('main installed=%s' % nova_recover.is_installed())
            return 'rc'

        with test.nested(
            mock.patch.object(importlib, 'import_module',
                              side_effect=import_module),
            mock.patch.object(nova_compute, 'main', side_effect=nova_main),
        ) as (_import, mock_main):
            self.assertEqual('rc', recover_compute.main())
        mock_main.assert_called_once_with()
        self.assertEqual('import nova.cmd.compute', events[0])
        self.assertEqual('main installed=True', events[-1])

    def test_main_refused_does_not_start_nova(self):
        with test.nested(
            mock.patch.object(overlay, '_nova_version',
                              return_value=((99, 0, 0), '99.0.0')),
            mock.patch.object(nova_compute, 'main'),
        ) as (_version, mock_main):
            self.assertRaises(nova_recover.InstallRefused,
                              recover_compute.main)
        mock_main.assert_not_called()


class InitHostTestCase(test.NoDBTestCase):
    """The overlay checks the options first and sums up at the end."""

    def test_init_host_is_wrapped(self):
        calls = []

        def init_host(self, service_ref):
            calls.append('init_host')

        self.useFixture(fixtures.MonkeyPatch(
            'nova.compute.manager.ComputeManager.init_host', init_host))
        self.addCleanup(overlay.uninstall)
        overlay.install()
        with test.nested(
            mock.patch.object(engine, 'check_options',
                              side_effect=lambda: calls.append('check')),
            mock.patch.object(engine, 'summarize',
                              side_effect=lambda m: calls.append('sum')),
            mock.patch.object(host_passes, 'run',
                              side_effect=lambda m, c: calls.append(
                                  'host passes')),
        ):
            manager.ComputeManager.init_host(mock.sentinel.manager, None)
        # The passes over migrations come after nova's init_host, which
        # readies the driver, and are counted in the summary.
        self.assertEqual(['check', 'init_host', 'host passes', 'sum'], calls)
        overlay.uninstall()
        self.assertFalse(overlay._is_ours(
            manager.ComputeManager.__dict__['init_host']))

    def test_nova_failure_fails_init_host_after_every_instance(self):
        """nova's own failing step fails start-up, as without recovery,

        once every instance went through start-up.
        """
        seen = []

        def default(context, instance):
            seen.append(instance)
            raise test.TestingException('vifs for %s' % instance)

        def init_host(self, service_ref):
            for name in ('first', 'second'):
                engine._nova_start_up(self, default, None, name)
            seen.append('end of init_host')

        self.useFixture(fixtures.MonkeyPatch(
            'nova.compute.manager.ComputeManager.init_host', init_host))
        self.addCleanup(overlay.uninstall)
        overlay.install()
        compute = mock.Mock(spec=[])
        with mock.patch.object(engine, 'summarize') as mock_summarize:
            raised = self.assertRaises(
                test.TestingException, manager.ComputeManager.init_host,
                compute, None)
        self.assertEqual('vifs for first', str(raised))
        self.assertEqual(['first', 'second', 'end of init_host'], seen)
        mock_summarize.assert_called_once_with(compute)

    def test_unknown_rule_stops_init_host(self):
        self.flags(disabled_rules=['nope'], group='recover')
        called = []

        def init_host(self, service_ref):
            called.append(True)

        self.useFixture(fixtures.MonkeyPatch(
            'nova.compute.manager.ComputeManager.init_host', init_host))
        self.addCleanup(overlay.uninstall)
        overlay.install()
        self.assertRaises(controls.UnknownRule,
                          manager.ComputeManager.init_host,
                          mock.sentinel.manager, None)
        self.assertEqual([], called)
