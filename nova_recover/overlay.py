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

"""Wrap nova's ComputeManager._init_instance with the recovery engine.

init_host and post_start_hook are wrapped too: the first to check the
options before any instance and sum up after the last, the second to
tell the engine when nova has started the RPC server(s), from which the
deferred sweep counts the grace of a request still queued.

Installing is an explicit call (the ``nova-compute-recover`` console
script makes it before nova-compute starts), never an import side
effect. It checks everything before it touches nova, so it either
patches fully or not at all.
"""

import functools
import importlib
from importlib import metadata
import inspect
import threading

# The nova releases whose _init_instance the rules were written against:
# 2025.1 (nova 31), 2026.1 (nova 33) and 2026.2 (nova 34), each proven
# with its own constraints file; startup_recovery/releases.py covers
# what differs between them.
SUPPORTED_NOVA = ((31, 0, 0), (35, 0, 0))
EXPECTED_PARAMETERS = ('self', 'context', 'instance')
# init_host is wrapped too, to check the [recover] options before any
# instance is touched and to log the summary line at its end.
EXPECTED_INIT_HOST_PARAMETERS = ('self', 'service_ref')
# post_start_hook is wrapped to tell the engine that nova started the RPC
# server(s): Service.start calls it right after rpcserver.start(). Nova's
# ComputeManager inherits it from nova.manager.Manager, so the
# wrapper is defined on ComputeManager and uninstall deletes it again.
EXPECTED_POST_START_HOOK_PARAMETERS = ('self',)
_MARK = '_nova_recover_wrapper'
# What ComputeManager's own __dict__ held before install: its own
# post_start_hook, or _INHERITED when it had none.
_INHERITED = object()

_lock = threading.Lock()
_original = None
_original_init_host = None
_original_post_start_hook = None


class InstallRefused(Exception):
    """The overlay cannot be installed on this nova; nothing was changed."""


def _nova_version():
    try:
        text = metadata.version('nova')
    except metadata.PackageNotFoundError:
        from nova import version
        text = version.version_string()
    release = []
    for part in text.split('.')[:3]:
        digits = ''.join(c for c in part if c.isdigit())
        release.append(int(digits or 0))
    return tuple(release + [0] * (3 - len(release))), text


def _manager_class():
    try:
        manager = importlib.import_module('nova.compute.manager')
    except ImportError as exc:
        raise InstallRefused('nova is not importable: %s' % exc)
    version, text = _nova_version()
    low, high = SUPPORTED_NOVA
    if not low <= version < high:
        raise InstallRefused(
            'nova %s is not supported; nova-recover needs nova >= %s, < %s'
            % (text, '.'.join(map(str, low)), '.'.join(map(str, high))))
    return manager.ComputeManager


def _check_signature(func, name='_init_instance',
                     expected=EXPECTED_PARAMETERS):
    params = tuple(inspect.signature(func).parameters)
    if params != expected:
        raise InstallRefused(
            'ComputeManager.%s%s does not have the expected signature %s'
            % (name, params, expected))


def _wrap(original):
    from nova_recover.startup_recovery import engine

    @functools.wraps(original)
    def _init_instance(self, context, instance):
        engine.init_instance(self, context, instance,
                             functools.partial(original, self))

    # The mark points at the wrapper itself: functools.wraps copies it onto
    # anything that wraps us, and such a wrapper must not pass for ours.
    setattr(_init_instance, _MARK, _init_instance)
    return _init_instance


def _wrap_init_host(original):
    from nova import context as nova_context

    from nova_recover.startup_recovery import engine
    from nova_recover.startup_recovery import host_passes

    @functools.wraps(original)
    def init_host(self, service_ref):
        engine.check_options()
        try:
            result = original(self, service_ref)
            # After nova's, which readies the driver: these operations are
            # of instances that nova's init_host never looks at, and none
            # of them is this host's to destroy (never raise).
            context = nova_context.get_admin_context()
            host_passes.run(self, context)
        finally:
            engine.summarize(self)
        # After nova's init_host, as nova's own failure would have left it.
        engine.raise_start_up_failure(self)
        return result

    setattr(init_host, _MARK, init_host)
    return init_host


def _wrap_post_start_hook(original):
    from nova_recover.startup_recovery import engine

    @functools.wraps(original)
    def post_start_hook(self):
        # First: the RPC server(s) already run, and the original may be
        # someone else's wrapper that takes its time.
        engine.serving(self)
        return original(self)

    setattr(post_start_hook, _MARK, post_start_hook)
    return post_start_hook


def _is_ours(func):
    return func is not None and getattr(func, _MARK, None) is func


def is_installed():
    """Whether ComputeManager._init_instance is our wrapper right now."""
    try:
        manager = importlib.import_module('nova.compute.manager')
    except ImportError:
        return False
    return _is_ours(manager.ComputeManager.__dict__.get('_init_instance'))


def _register_options():
    """Register [recover] on nova's CONF, as nova/conf registers its own.

    The recovery package reads CONF.recover and registers nothing: in
    patched nova, nova/conf/__init__.py registers the group. Registering
    the same options again changes nothing.
    """
    import nova.conf

    from nova_recover import conf as recover_conf
    recover_conf.register_opts(nova.conf.CONF)


def install():
    """Wrap _init_instance, init_host and post_start_hook; a second call
    changes nothing.

    :raises InstallRefused: nova is missing, of an unsupported version, or
        its _init_instance is not the one the rules were written for.
    """
    global _original, _original_init_host, _original_post_start_hook
    with _lock:
        cls = _manager_class()
        _register_options()
        current = cls.__dict__['_init_instance']
        if _is_ours(current):
            return
        # Wrap what is there now, not an original saved by an earlier
        # install: someone may have wrapped nova since we were uninstalled.
        # Everything is checked before anything is changed.
        _check_signature(current)
        init_host = cls.__dict__['init_host']
        if not _is_ours(init_host):
            _check_signature(init_host, 'init_host',
                             EXPECTED_INIT_HOST_PARAMETERS)
        own_hook = cls.__dict__.get('post_start_hook', _INHERITED)
        if not _is_ours(own_hook):
            # The inherited one when ComputeManager has none of its own.
            hook = cls.post_start_hook
            _check_signature(hook, 'post_start_hook',
                             EXPECTED_POST_START_HOOK_PARAMETERS)
        if not _is_ours(init_host):
            _original_init_host = init_host
            cls.init_host = _wrap_init_host(init_host)
        if not _is_ours(own_hook):
            _original_post_start_hook = own_hook
            cls.post_start_hook = _wrap_post_start_hook(hook)
        wrapper = _wrap(current)
        _original = current
        cls._init_instance = wrapper


def uninstall():
    """Put nova's originals back, unless someone wrapped us since."""
    with _lock:
        if _original is None:
            return
        cls = importlib.import_module('nova.compute.manager').ComputeManager
        if _is_ours(cls.__dict__.get('_init_instance')):
            cls._init_instance = _original
        if (_original_init_host is not None and
                _is_ours(cls.__dict__.get('init_host'))):
            cls.init_host = _original_init_host
        if (_original_post_start_hook is not None and
                _is_ours(cls.__dict__.get('post_start_hook'))):
            if _original_post_start_hook is _INHERITED:
                # Back to nova.manager.Manager's, as before install.
                del cls.post_start_hook
            else:
                cls.post_start_hook = _original_post_start_hook


def original():
    """Nova's own _init_instance as saved by install(), or None."""
    return _original
