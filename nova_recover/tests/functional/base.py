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

"""Crash nova-compute in the middle of an operation and restart it.

The crash is a driver step that never returns, as it would not in a killed
process: the request parks there while the test stops the compute service
without waiting for anything and starts a new one, whose start-up is what
the tests look at. Everything is read back through the REST API, the way
a user would see it.

This works alike under eventlet and native threading: no thread is ever
killed, and nothing waits for the parked one until the test's cleanup
releases it.
"""

import contextlib
import importlib
import threading
import time
from unittest import mock

import fixtures
from oslo_concurrency import lockutils
from oslo_utils import timeutils

from nova.compute import power_state
import nova.conf
from nova import objects
from nova.tests.functional.api import client as api_client
from nova.tests.functional import integrated_helpers
from nova import utils

import nova_recover
import nova_recover.tests
from nova_recover.tests import fixtures as recover_fixtures
from nova_recover.tests import overlay_fixtures

CONF = nova.conf.CONF

HOST = 'host1'
# How long a crashed request is parked at most; the test's cleanup ends it.
PARKED = 1000000
RESTART_TIMEOUT = 30
# Generous: a loaded test node can take a while to build a server.
BUILD_TIMEOUT = 30


# nova's API waits give up after 5 s; a 2-core CI node running two test
# workers can take longer than that to finish an operation.
WAIT_ROUNDS = 4


class PatientWaits(object):
    """nova's functional-test waits, given WAIT_ROUNDS times their time.

    A wait that succeeds returns as soon as it does, so this only ever
    costs time on a slow node, where it turns a spurious failure into a
    pass; a real failure still fails, with nova's own message.

    Every suite that drives servers through the REST API mixes this in,
    so it also skips them where nova's harness cannot run them: nova 33
    under native threading. Its nova-compute can run so, but its
    notification fixture finds the test that sent a notification by
    walking eventlet's greenlets, and each server the suites build would
    fail its wait for instance.create.end. nova 33 runs its own
    functional tests under eventlet only; the census and the controls,
    which send no request, run in both modes.
    """

    def setUp(self):
        if not _api_harness_runs_here():
            self.skipTest("nova %s's functional harness serves API "
                          "requests under eventlet only"
                          % nova_recover.tests.NOVA_VERSION)
        super().setUp()

    def _wait_for_server_parameter(self, server, expected_params,
                                   max_retries=10, **kwargs):
        return super()._wait_for_server_parameter(
            server, expected_params, max_retries * WAIT_ROUNDS, **kwargs)

    def _wait_for_instance_action_event(self, *args, **kwargs):
        # nova's loop has a fixed 10 polls: ask again rather than copy it.
        for _round in range(WAIT_ROUNDS - 1):
            try:
                return super()._wait_for_instance_action_event(
                    *args, **kwargs)
            except self.failureException:
                pass
        return super()._wait_for_instance_action_event(*args, **kwargs)


class Killed(BaseException):
    """What ends a crashed request once its test is over.

    Not an Exception, so nova's ``except Exception`` handlers let it
    through rather than roll the dead request back: a killed process
    does not clean up after itself either.
    """


class CrashRestartTestCase(PatientWaits,
                           integrated_helpers.ProviderUsageBaseTestCase):
    """One compute on the fake driver, real RPC casts.

    RECOVER picks the mode: True installs the overlay (a no-op against a
    patched nova, see overlay_fixtures.Overlay), False leaves stock nova alone.
    """

    compute_driver = 'fake.MediumFakeDriver'
    microversion = 'latest'
    # The API must return before the compute works, as in production, so
    # the compute can die half-way through a request. The base class
    # never turns casts into calls; this says that it must stay so.
    CAST_AS_CALL = False
    RECOVER = True

    def setUp(self):
        super().setUp()
        if self.RECOVER:
            self.useFixture(overlay_fixtures.Overlay())
        elif not overlay_fixtures.native():
            # A leftover install would make "stock" a lie.
            self.assertFalse(nova_recover.is_installed())
        # Start-up runs as in a real nova-compute: no database, every
        # remotable call through nova-conductor.
        self.shape = self.useFixture(recover_fixtures.ProductionShape(
            threads=overlay_fixtures.startup_threads()))
        self._date_new_images()
        # Stopping a service must not wait for its in-flight requests, nor
        # may its cleanup: a crashed request is one of them.
        no_shutdown_wait(self)
        self._start_compute(HOST)
        # Parked requests wake up at cleanup, after the test's assertions,
        # and unwind before the database goes.
        self._parked = threading.Event()
        self._dying = []
        self.addCleanup(self._release_parked)

    def _date_new_images(self):
        """Stamp each new image with the time it is created, as glance does.

        The glance fixture dates every image 2011-01-01, before any
        request of the test: the shelve rule only adopts an image created
        no earlier than the shelve's action.
        """
        real = self.glance.create

        def create(context, metadata, data=None):
            if not metadata.get('created_at'):
                metadata = dict(metadata,
                                created_at=timeutils.utcnow(True))
            return real(context, metadata, data)

        self.useFixture(fixtures.MockPatchObject(self.glance, 'create',
                                                 side_effect=create))

    def _release_parked(self):
        """End the parked requests and wait, a while, for them to unwind.

        Their threads belong to executors that nova's harness joins only
        after the database is gone (a build runs in nova's own pool, not
        in the RPC server's), and unwinding a request still writes, e.g.
        its action event's end: it must find this test's database.
        """
        self._parked.set()
        deadline = time.monotonic() + RESTART_TIMEOUT
        for worker in self._dying:
            while not _unwound(worker) and time.monotonic() < deadline:
                time.sleep(0.05)

    @property
    def driver(self):
        return self.computes[HOST].manager.driver

    def create_server(self, wait=True):
        server = self._build_server(networks='none')
        server = self.api.post_server({'server': server})
        if wait:
            # The notification comes at once, where polling the state
            # would cost up to half a second per server.
            self.notifier.wait_for_versioned_notifications(
                'instance.create.end', timeout=BUILD_TIMEOUT)
            self._wait_for_instance_action_event(
                server, 'create', 'compute__do_build_and_run_instance',
                'success')
            server = self.api.get_server(server['id'])
            self.assertEqual('ACTIVE', server['status'])
        return server

    def task_state(self, server_id):
        return self.api.get_server(server_id)['OS-EXT-STS:task_state']

    def kill_and_restart(self, host=HOST):
        """Restart a compute service as if its process had been killed.

        Service.stop() runs the manager's graceful shutdown (waiting for
        in-progress requests, then cleanup_host) and waits for the RPC
        servers' executors, that is for the very request that is dying:
        under native threading it waits for a thread parked by
        crash_during, or for itself, forever. A killed process waits for
        nothing and cleans nothing up, so both steps are skipped here;
        the service's cleanup runs them once the parked requests are
        released.
        """
        compute = self.computes[host]
        kill(compute)
        # Nothing of the killed process goes on: its recovery sweep is a
        # thread that only the skipped cleanup_host would have ended.
        _sweep_module().stop(compute.manager)
        # A new process holds none of the dead one's in-process locks,
        # such as the instance lock a reboot takes.
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.lockutils._semaphores', lockutils.Semaphores()))
        # restart_compute_service() stops it again: once is enough, and
        # the harness counts each stop() as one service gone.
        with mock.patch.object(compute, 'stop'):
            self.computes[host] = self.restart_compute_service(compute)
        return self.computes[host]

    @contextlib.contextmanager
    def crash_during(self, driver_method, after=False, guest_state=None,
                     host=HOST):
        """Crash nova-compute inside one call of a driver method.

        The first call parks until the test's cleanup, and the test then
        restarts the compute service (kill_and_restart); later calls, such
        as those of the restarted service's start-up, reach the real
        driver. On leaving the block the restart has finished; the
        yielded dict then holds 'server_id' and 'task_state', the task
        state the instance had when the service died.

        :param after: run the real driver step before dying, e.g. to let
            the fake driver's snapshot set IMAGE_UPLOADING.
        :param guest_state: power state the crash leaves the guest in,
            e.g. SHUTDOWN for a soft reboot that got as far as stopping
            the guest.
        :param host: the compute whose driver dies and restarts.
        """
        driver = self.computes[host].manager.driver
        real = getattr(driver, driver_method)
        crash = {}
        reached = threading.Event()

        def die(*args, **kwargs):
            if crash:
                return real(*args, **kwargs)
            instance = _instance_of(args, kwargs)
            crash.update(server_id=instance.uuid, task_state=None)
            try:
                if after:
                    real(*args, **kwargs)
                if guest_state is not None:
                    driver.instances[instance.uuid].state = guest_state
                crash['task_state'] = self.task_state(instance.uuid)
            except Exception as exc:
                crash['error'] = exc
            finally:
                reached.set()
            self._dying.append(_current_worker())
            self._parked.wait(PARKED)
            raise Killed()

        with mock.patch.object(driver, driver_method, side_effect=die):
            yield crash
            if not reached.wait(RESTART_TIMEOUT):
                self.fail('nova-compute never reached %s.%s'
                          % (type(driver).__name__, driver_method))
            # The restart runs here, in the test's thread, and not in the
            # dying request's: a new process shares no thread, and no
            # thread-local state, with the one that was killed.
            self.kill_and_restart(host)
        if 'error' in crash:
            raise crash['error']

    def outcome(self, server_id):
        """What the server's owner sees of it, as one comparable row.

        The fields are scenarios.ROW_FIELDS. Each is deterministic for a
        given scenario and mode, so that two runs (overlay and patched
        nova, threading and eventlet) give equal rows:

        - vm_state, task_state, host, power_state and fault (its message
          or None) as the REST API shows them, of a deleted server too;
        - flavor: the name of the flavor the server has;
        - guest: the power state the driver of the server's host has for
          its guest, or 'none' when that driver has no guest;
        - images: [name, status] of each image in glance made from this
          server, sorted, its name with the server's name as SERVER (the
          server's name is random); an image deleted is absent;
        - events: [[event, result], ...] of the request's own action (the
          first action after the ones run_scenario found before it sent
          the request), or None when it made none;
        - actions: every action, oldest first, with its events' results.
        """
        try:
            server = self.api.get_server(server_id)
        except api_client.OpenStackApiNotFoundException:
            server = self._deleted_server(server_id)
        power = server.get('OS-EXT-STS:power_state')
        host = server.get('OS-EXT-SRV-ATTR:host')
        actions = self.actions(server_id)
        before = getattr(self, '_actions_before', None)
        events = None
        if before is not None and len(actions) > before:
            events = actions[before]['events']
        return {
            'vm_state': server.get('OS-EXT-STS:vm_state'),
            'task_state': server.get('OS-EXT-STS:task_state'),
            'host': host,
            'flavor': (server.get('flavor') or {}).get('original_name'),
            'power_state': power_state.STATE_MAP.get(power, power),
            'guest': self.guest_of(server_id, host),
            'images': self.image_rows(server_id, server.get('name')),
            'events': events,
            'actions': actions,
            'fault': server.get('fault', {}).get('message'),
        }

    def guest_of(self, server_id, host):
        """The driver's power state name of the guest on host, or 'none'.

        A server without a host (a build that never got one, a shelved
        offloaded one) is looked for on every compute: a guest there is
        debris the owner cannot reach.
        """
        hosts = [host] if host in self.computes else sorted(self.computes)
        for name in hosts:
            guest = self.computes[name].manager.driver.instances.get(
                server_id)
            if guest is not None:
                return power_state.STATE_MAP.get(guest.state, guest.state)
        return 'none'

    def image_rows(self, server_id, server_name=None):
        """[name, status] of the glance images made from the server."""
        found = []
        for image in self.glance.images.values():
            properties = image.get('properties') or {}
            if properties.get('instance_uuid') != server_id:
                continue
            name = image.get('name') or ''
            if server_name:
                name = name.replace(server_name, 'SERVER')
            found.append([name, image.get('status')])
        return sorted(found)

    def _deleted_server(self, server_id):
        servers = self.api.get_servers(
            search_opts={'deleted': True, 'uuid': server_id})
        if servers:
            return servers[0]
        return {'OS-EXT-STS:vm_state': 'deleted'}

    def actions(self, server_id):
        """Instance actions, oldest first, with their events' results."""
        rows = []
        for action in reversed(self.api.get_instance_actions(server_id)):
            details = self.api.get_instance_action_details(
                server_id, action['request_id'])
            # An unfinished event has no result; sort it first.
            events = sorted(([event['event'], event['result']]
                             for event in details.get('events', [])),
                            key=lambda e: (e[0], e[1] or ''))
            rows.append({'action': action['action'], 'events': events})
        return rows

    def run_scenario(self, scenario):
        """Set up, request, crash, restart; return (task_state, row).

        The task state is the one the instance had when nova-compute
        died, the row is what outcome() reads once the restarted service
        has initialised its instances.
        """
        server = self.create_server() if scenario.boot else None
        for step in scenario.setup:
            server = step(self, server) or server
        # The request's own action is the first one after these.
        self._actions_before = len(
            self.api.get_instance_actions(server['id'])) if server else 0
        with self.crash_during(scenario.crash_in,
                               **scenario.crash_kwargs) as crash:
            scenario.request(self, server)
        return crash['task_state'], self.outcome(crash['server_id'])


def no_shutdown_wait(test):
    """Let a stopping service wait for none of its in-flight requests.

    nova 33 and 34 wait up to [DEFAULT]manager_shutdown_timeout; nova
    31 has no such wait, nor the option.
    """
    if 'manager_shutdown_timeout' in CONF:
        test.flags(manager_shutdown_timeout=0)


def kill(service):
    """Stop a compute service as a killed process stops: at once.

    Service.stop() runs the manager's graceful shutdown (nova 33 and 34)
    or cleanup_host (nova 31) and waits for each RPC server's executor,
    that is for the very request that is dying. The RPC servers stop
    taking requests; the waits and the clean-up are skipped, each
    release's by its own names, and the service's fixture runs them at
    cleanup, once the parked requests are released.
    """
    with contextlib.ExitStack() as skipped:
        if hasattr(service, '_run_manager_graceful_shutdown'):
            # nova 34.
            skipped.enter_context(mock.patch.object(
                service, '_run_manager_graceful_shutdown'))
            skipped.enter_context(mock.patch.object(
                service, '_wait_rpc_server'))
        else:
            for server in (service.rpcserver,
                           getattr(service, 'rpcserver_alt', None)):
                if server is not None:
                    skipped.enter_context(mock.patch.object(server, 'wait'))
            # nova 33's graceful_shutdown ends in cleanup_host; nova 31
            # calls cleanup_host alone.
            for name in ('graceful_shutdown', 'cleanup_host'):
                if hasattr(service.manager, name):
                    skipped.enter_context(
                        mock.patch.object(service.manager, name))
        service.stop()


def _api_harness_runs_here():
    """Whether nova's functional harness can serve API requests here.

    nova 34's runs in both modes, nova 31's only on eventlet (the only
    mode there is), nova 33's only on eventlet (see PatientWaits).
    """
    return nova_recover.tests.NOVA_MAJOR >= 34 or not _threading_mode()


def _threading_mode():
    """Whether nova runs on native threads here; nova 31 never does."""
    return getattr(utils, 'concurrency_mode_threading', lambda: False)()


def _current_worker():
    """The calling thread, or greenthread under eventlet."""
    if _threading_mode():
        return threading.current_thread()
    get_eventlet = getattr(utils, 'get_eventlet', None)  # nova 34
    if get_eventlet is None:
        # nova 31 and 33 run on eventlet here and import it themselves.
        import eventlet  # noqa: H905
        return eventlet.getcurrent()
    return get_eventlet().getcurrent()


def _unwound(worker):
    """Whether a parked request's thread is done with it.

    A futurist worker thread outlives its work item and goes idle; a
    greenthread of an eventlet pool ends with it.
    """
    if isinstance(worker, threading.Thread):
        return not worker.is_alive() or getattr(worker, 'idle', False)
    return worker.dead


def _sweep_module():
    return importlib.import_module(
        'nova.compute.startup_recovery.sweep' if overlay_fixtures.native()
        else 'nova_recover.startup_recovery.sweep')


def _instance_of(args, kwargs):
    """The instance a driver method was called for."""
    if 'instance' in kwargs:
        return kwargs['instance']
    for arg in args:
        if isinstance(arg, objects.Instance):
            return arg
    raise AssertionError('no instance among the driver call arguments')
