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

"""One failing instance must not stop nova-compute from starting.

Several servers on one compute are left in stuck states while the service
is down; then one driver call a rule makes (or Instance.save) fails for
one of them only, and the service is restarted. The restart completes,
the other instances reach their documented ends, and the failing one is
in ERROR with a fault naming the interrupted operation, or untouched
when the very save that would move it fails.
"""

from unittest import mock

import ddt

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects
from nova import test
from nova.tests.functional import integrated_helpers

from nova_recover.tests import fixtures as recover_fixtures
from nova_recover.tests.functional import base
from nova_recover.tests import overlay_fixtures

# name -> (vm_state, task_state, guest power state, the API action and
# compute method that show an API-set request reached this host).
STUCK = {
    'reboot': (vm_states.ACTIVE, task_states.REBOOT_STARTED_HARD,
               power_state.SHUTDOWN, None),
    'stop': (vm_states.ACTIVE, task_states.POWERING_OFF,
             power_state.RUNNING,
             (instance_actions.STOP, 'compute_stop_instance')),
    'start': (vm_states.STOPPED, task_states.POWERING_ON,
              power_state.SHUTDOWN,
              (instance_actions.START, 'compute_start_instance')),
    'delete': (vm_states.ACTIVE, task_states.DELETING,
               power_state.RUNNING, None),
    'build': (vm_states.BUILDING, task_states.SPAWNING,
              power_state.RUNNING, None),
    'snapshot': (vm_states.ACTIVE, task_states.IMAGE_UPLOADING,
                 power_state.RUNNING, None),
}

# Where each one ends when nothing fails: (vm_state, power_state), or
# None for deleted.
RECOVERED = {
    'reboot': (vm_states.ACTIVE, power_state.RUNNING),
    'stop': (vm_states.STOPPED, power_state.SHUTDOWN),
    'start': (vm_states.ACTIVE, power_state.RUNNING),
    'delete': None,
    'build': (vm_states.ERROR, None),
    'snapshot': (vm_states.ACTIVE, power_state.RUNNING),
}

# The driver call each rule makes, the server it is made for, and the
# operation the fault must name.
DRIVER_CALLS = {
    'reboot': ('reboot', 'hard reboot'),
    'power_off': ('stop', 'stop'),
    'power_on': ('start', 'start'),
    'destroy': ('delete', 'delete'),
}


def _instance_of(args, kwargs):
    """The instance a driver call is made for."""
    if 'instance' in kwargs:
        return kwargs['instance']
    return next(a for a in args if isinstance(a, objects.Instance))


class _Base(base.PatientWaits, integrated_helpers.ProviderUsageBaseTestCase):

    compute_driver = 'fake.MediumFakeDriver'

    def setUp(self):
        super().setUp()
        self.ctxt = nova_context.get_admin_context()
        self.compute = self._start_compute('host1')

    def _boot(self, names):
        servers = {}
        for name in names:
            server = self._create_server(name=name, networks='none')
            servers[name] = server['id']
        return servers

    def _get(self, uuid):
        return objects.Instance.get_by_uuid(
            nova_context.get_admin_context(read_deleted='yes'), uuid)

    def _stick(self, uuid, name):
        """Leave the instance as a crash in the middle of name would."""
        vm_state, task_state, guest, evidence = STUCK[name]
        instance = objects.Instance.get_by_uuid(self.ctxt, uuid)
        instance.vm_state = vm_state
        instance.task_state = task_state
        instance.save()
        self.compute.manager.driver.instances[uuid].state = guest
        if evidence:
            # The API recorded the request and the manager method began
            # here before the crash, as nova itself records them.
            action, event = evidence
            ctxt = nova_context.get_admin_context()
            objects.InstanceAction.action_start(ctxt, uuid, action)
            objects.InstanceActionEvent.event_start(ctxt, uuid, event,
                                                    host='host1')

    def _stop_and_stick(self, servers):
        self.compute.stop()
        for name, uuid in servers.items():
            self._stick(uuid, name)

    def assertRecovered(self, name, uuid):
        instance = self._get(uuid)
        if RECOVERED[name] is None:
            self.assertTrue(instance.deleted, name)
            return
        vm_state, power = RECOVERED[name]
        self.assertEqual(vm_state, instance.vm_state, name)
        self.assertIsNone(instance.task_state, name)
        if power is not None:
            self.assertEqual(power, instance.power_state, name)

    def assertFaultNames(self, uuid, text):
        server = self.admin_api.get_server(uuid)
        self.assertEqual('ERROR', server['status'])
        self.assertIn(text, server['fault']['message'])


@ddt.ddt
class FaultInjectionTestCase(_Base):

    def setUp(self):
        super().setUp()
        self.useFixture(overlay_fixtures.Overlay())
        self.useFixture(recover_fixtures.ProductionShape(
            threads=overlay_fixtures.startup_threads()))
        self.servers = self._boot(STUCK)
        self._stop_and_stick(self.servers)

    def _restart(self):
        self.compute = self.restart_compute_service(self.compute)
        service, = self.admin_api.get_services(binary='nova-compute',
                                               host='host1')
        self.assertEqual('up', service['state'])

    def test_no_failure_recovers_all(self):
        self._restart()
        for name, uuid in self.servers.items():
            self.assertRecovered(name, uuid)
        self.assertFaultNames(self.servers['build'],
                              'build interrupted by nova-compute restart')

    @ddt.data(*sorted(DRIVER_CALLS))
    def test_driver_call_fails_for_one(self, method):
        failing, operation = DRIVER_CALLS[method]
        target = self.servers[failing]
        driver = self.compute.manager.driver
        real = getattr(driver, method)

        def fail_for_target(*args, **kwargs):
            if _instance_of(args, kwargs).uuid == target:
                raise test.TestingException('injected %s failure' % method)
            return real(*args, **kwargs)

        with mock.patch.object(driver, method,
                               side_effect=fail_for_target) as mock_call:
            self._restart()
        self.assertIn(target, [_instance_of(*c).uuid
                               for c in mock_call.call_args_list])
        for name, uuid in self.servers.items():
            if name != failing:
                self.assertRecovered(name, uuid)
        instance = self._get(target)
        self.assertEqual(vm_states.ERROR, instance.vm_state)
        self.assertIsNone(instance.task_state)
        self.assertFalse(instance.deleted)
        self.assertFaultNames(
            target, '%s interrupted by nova-compute restart: injected %s '
                    'failure' % (operation, method))

    @ddt.data(*sorted(STUCK))
    def test_save_fails_for_one(self, failing):
        """Every save of the failing instance fails: start-up goes on and

        the instance keeps the state it had (the database never took a
        half-written recovery).
        """
        target = self.servers[failing]
        real = objects.Instance.save
        saved = []

        def save(instance, *args, **kwargs):
            saved.append(instance.uuid)
            if instance.uuid == target:
                raise test.TestingException('injected save failure')
            return real(instance, *args, **kwargs)

        with mock.patch.object(objects.Instance, 'save', new=save):
            self._restart()
        self.assertIn(target, saved)
        for name, uuid in self.servers.items():
            if name != failing:
                self.assertRecovered(name, uuid)
        vm_state, task_state, _guest, _evidence = STUCK[failing]
        instance = self._get(target)
        self.assertEqual(vm_state, instance.vm_state)
        self.assertEqual(task_state, instance.task_state)


class StockContrastTestCase(_Base):
    """Stock nova 34, overlay not installed, for contrast."""

    def setUp(self):
        if overlay_fixtures.native():
            self.skipTest('nova under test carries the patch series')
        super().setUp()
        self.useFixture(recover_fixtures.ProductionShape(
            threads=overlay_fixtures.startup_threads()))

    def test_reboot_retry_raising_aborts_start_up(self):
        """A failing hard reboot retry escapes stock _init_instance and

        init_host, so nova-compute does not start at all; with the overlay
        the same failure is test_driver_call_fails_for_one(reboot).
        """
        servers = self._boot(['reboot', 'stop'])
        self._stop_and_stick(servers)
        driver = self.compute.manager.driver
        with mock.patch.object(
                driver, 'reboot',
                side_effect=test.TestingException('injected reboot failure')):
            self.assertRaises(test.TestingException,
                              self.restart_compute_service, self.compute)


class HostNotReadyTestCase(_Base):
    """nova's own start-up step fails for every instance of the host."""

    def setUp(self):
        super().setUp()
        self.useFixture(overlay_fixtures.Overlay())
        self.useFixture(recover_fixtures.ProductionShape(
            threads=overlay_fixtures.startup_threads()))

    def test_healthy_servers_stay_as_they_are(self):
        """Before, every healthy server went to ERROR with a false

        "start-up interrupted by nova-compute restart" fault when, say,
        Open vSwitch was not up yet. Now start-up fails as stock's does,
        after the stuck servers were recovered, and touches no healthy
        server; the next start, with the host ready, succeeds.
        """
        servers = self._boot(['healthy-1', 'healthy-2', 'snapshot',
                              'stop'])
        self.compute.stop()
        self._stick(servers['snapshot'], 'snapshot')
        self._stick(servers['stop'], 'stop')
        with mock.patch('nova.virt.fake.FakeDriver.plug_vifs',
                        side_effect=test.TestingException('no vswitch')):
            raised = self.assertRaises(test.TestingException,
                                       self.restart_compute_service,
                                       self.compute)
        self.assertEqual('no vswitch', str(raised))
        for name in ('healthy-1', 'healthy-2'):
            instance = self._get(servers[name])
            self.assertEqual(vm_states.ACTIVE, instance.vm_state, name)
            self.assertIsNone(instance.task_state, name)
            self.assertEqual(power_state.RUNNING, instance.power_state,
                             name)
            self.assertNotIn('fault', self.admin_api.get_server(
                servers[name]))
        # The interrupted operations were recovered all the same.
        self.assertRecovered('snapshot', servers['snapshot'])
        self.assertRecovered('stop', servers['stop'])
        for uuid in servers.values():
            self.assertNotIn('fault', self.admin_api.get_server(uuid))
        # The host is ready now: nova-compute starts, nothing changes.
        self.compute = self.restart_compute_service(self.compute)
        service, = self.admin_api.get_services(binary='nova-compute',
                                               host='host1')
        self.assertEqual('up', service['state'])
        for name in ('healthy-1', 'healthy-2', 'snapshot'):
            self.assertEqual('ACTIVE', self.admin_api.get_server(
                servers[name])['status'], name)
