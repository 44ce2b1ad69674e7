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

"""A request lost while nova-compute was down, and the deferred sweep.

The API records the request and casts, but the cast never reaches the
host (here: the compute RPC API drops it, as a purged queue would).
Start-up cannot tell that from a queued request and leaves the instance
alone; the sweep takes the request as lost once the restarted service
has consumed its queue for [recover] queued_request_grace (counted from
when nova started its RPC server, which the overlay's post_start_hook
reports), and never before, however long ago the request was cast. A
lost request leaves the server as it was, with an Error event on its
action that says the request was lost.
"""

import datetime
import time
from unittest import mock

from oslo_utils import timeutils

from nova.compute import manager as compute_manager
from nova.compute import power_state
from nova.compute import rpcapi as compute_rpcapi

from nova_recover.startup_recovery import base as recover_base
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import state as recovery_state
from nova_recover.startup_recovery import sweep
from nova_recover.tests.functional import base


class LostMessageTestCase(base.CrashRestartTestCase):

    RECOVER = True

    def setUp(self):
        super().setUp()
        self.addCleanup(self._stop_sweep)

        def pause(driver, instance):
            # The fake driver's pause leaves the guest running; a real
            # hypervisor's pauses it, which is what the sweep reads.
            driver.instances[instance.uuid].state = power_state.PAUSED

        self.stub_out('nova.virt.fake.FakeDriver.pause', pause)

    def _stop_sweep(self):
        sweep.stop(self.computes[base.HOST].manager)

    def _pause_lost(self, grace=600, interval=3600, before_serving=None,
                    background=False):
        """Pause a server while its compute is down and lose the cast.

        :param before_serving: called with the new manager at the end of
            its start-up, before nova starts its RPC server.
        :param background: leave the sweep's thread running; otherwise
            it is stopped (after the pass that serving wakes) and the
            test drives the passes, on clocks of its own.
        """
        self.flags(queued_request_grace=grace, sweep_interval=interval,
                   group='recover')
        server = self.create_server()
        compute = self.computes[base.HOST]
        compute.stop()
        casts = []

        def drop(*args, **kwargs):
            casts.append((args, kwargs))

        with mock.patch.object(compute_rpcapi.ComputeAPI, 'pause_instance',
                               side_effect=drop):
            self.api.post_server_action(server['id'], {'pause': None})
        self.assertEqual(1, len(casts))
        real_hook = compute_manager.ComputeManager.pre_start_hook

        def pre_start_hook(manager, service_ref):
            if before_serving is not None:
                before_serving(manager)
            return real_hook(manager, service_ref)

        with mock.patch.object(compute_manager.ComputeManager,
                               'pre_start_hook', pre_start_hook):
            self.computes[base.HOST] = self.restart_compute_service(compute)
        manager = self.computes[base.HOST].manager
        # Service.start ran post_start_hook after the RPC server started.
        self.assertIsNotNone(sweep.served(manager))
        if not background:
            sweep.stop(manager)
        return server, casts[0]

    def _sweep_at(self, seconds_after, outage=0, manager=None):
        """A pass seconds after nova started the RPC server.

        :param outage: how much longer ago than in fact the request was
            recorded, as after a long outage.
        """
        manager = manager or self.computes[base.HOST].manager
        later = timeutils.utcnow() + datetime.timedelta(
            seconds=outage + seconds_after)
        state = recovery_state.of(manager).sweep
        started = state.serving_started
        clock = (started if started is not None else 0) + seconds_after
        with mock.patch.object(timeutils, 'utcnow', return_value=later), \
                mock.patch.object(sweep, '_clock', return_value=clock):
            return sweep.sweep_once(manager)

    def test_recovered_after_the_grace_and_not_before(self):
        server, _cast = self._pause_lost()
        manager = self.computes[base.HOST].manager
        # Start-up left it for a request that may be queued.
        self.assertEqual('pausing', self.task_state(server['id']))
        self.assertIn(server['id'], sweep.watched(manager))

        self.assertEqual({server['id']: sweep.WAITING},
                         self._sweep_at(500))
        self.assertEqual('pausing', self.task_state(server['id']))

        self.assertEqual({server['id']: sweep.RECOVERED},
                         self._sweep_at(700))
        server = self.api.get_server(server['id'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        # The request never ran here: the server is as it was before it,
        # and the pause action says that the request was lost.
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        self.assertNotIn('fault', server)
        self.assertEqual(
            {'action': 'pause',
             'events': [[evidence.LOST_EVENT, 'Error']]},
            self.actions(server['id'])[-1])
        self.assertEqual({}, sweep.watched(manager))

    def test_not_lost_before_the_rpc_server_starts(self):
        """An outage longer than the grace, as a maintenance reboot.

        The request is older than the grace before start-up even begins;
        it is lost only once the service has consumed its queue for the
        grace.
        """
        outage = 6000
        during_start_up = []

        def sweep_during_start_up(manager):
            self.assertIsNone(sweep.served(manager))
            during_start_up.append(self._sweep_at(outage, manager=manager))

        server, _cast = self._pause_lost(before_serving=sweep_during_start_up)
        self.assertEqual([{server['id']: sweep.WAITING}], during_start_up)
        self.assertEqual('pausing', self.task_state(server['id']))
        self.assertEqual({server['id']: sweep.WAITING},
                         self._sweep_at(500, outage=outage))
        self.assertEqual('pausing', self.task_state(server['id']))
        self.assertEqual({server['id']: sweep.RECOVERED},
                         self._sweep_at(600, outage=outage))
        self.assertIsNone(self.task_state(server['id']))

    def test_background_sweep_recovers_by_itself(self):
        server, _cast = self._pause_lost(grace=1, interval=1,
                                         background=True)
        deadline = time.time() + 15
        while (self.task_state(server['id']) is not None and
               time.time() < deadline):
            time.sleep(0.2)
        server = self.api.get_server(server['id'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        self.assertNotIn('fault', server)

    def test_request_arriving_during_the_sweep_wins(self):
        server, cast = self._pause_lost()
        real_load = evidence.load

        def request_lands_meanwhile(context, instance, names):
            stale = real_load(context, instance, names)
            # The late cast reaches the running service once the sweep
            # has read that nothing arrived.
            with self.shape.conductor_side():
                compute_rpcapi.ComputeAPI().pause_instance(*cast[0],
                                                           **cast[1])
                self._wait_for_state_change(server, 'PAUSED')
            return stale

        settled = []
        real_settle = recover_base.settle

        def settle(*args, **kwargs):
            settled.append(real_settle(*args, **kwargs))
            return settled[-1]

        with mock.patch.object(evidence, 'load',
                               side_effect=request_lands_meanwhile), \
                mock.patch.object(recover_base, 'settle',
                                  side_effect=settle):
            self._sweep_at(700)
        # The sweep did try, and its compare-and-swap lost.
        self.assertEqual([False], settled)
        server = self.api.get_server(server['id'])
        self.assertEqual('PAUSED', server['status'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertNotIn('fault', server)
        actions = self.actions(server['id'])
        self.assertEqual(
            {'action': 'pause',
             'events': [['compute_pause_instance', 'Success']]},
            actions[-1])
