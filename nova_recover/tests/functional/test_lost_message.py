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
alone; the sweep recovers it once the request is older than
[recover] queued_request_grace, and never before.
"""

import datetime
import time
from unittest import mock

from oslo_utils import timeutils

from nova.compute import power_state
from nova.compute import rpcapi as compute_rpcapi

from nova_recover.recovery import base as recover_base
from nova_recover.recovery import evidence
from nova_recover.recovery import sweep
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

    def _pause_lost(self, grace=600, interval=3600):
        """Pause a server while its compute is down and lose the cast."""
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
        self.computes[base.HOST] = self.restart_compute_service(compute)
        return server, casts[0]

    def _sweep_at(self, seconds_after):
        later = timeutils.utcnow() + datetime.timedelta(
            seconds=seconds_after)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            return sweep.sweep_once(self.computes[base.HOST].manager)

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
        # The guest was never paused: the sweep pauses it, as the user
        # asked, under an action of its own beside the API's.
        self.assertEqual('PAUSED', server['status'])
        self.assertEqual(power_state.PAUSED,
                         server['OS-EXT-STS:power_state'])
        self.assertNotIn('fault', server)
        self.assertEqual(
            [{'action': 'pause', 'events': []},
             {'action': 'pause',
              'events': [['compute_pause_instance', 'Success']]}],
            self.actions(server['id'])[-2:])
        self.assertEqual({}, sweep.watched(manager))

    def test_background_sweep_recovers_by_itself(self):
        server, _cast = self._pause_lost(grace=1, interval=1)
        deadline = time.time() + 15
        while (self.task_state(server['id']) is not None and
               time.time() < deadline):
            time.sleep(0.2)
        server = self.api.get_server(server['id'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual('PAUSED', server['status'])
        self.assertEqual(power_state.PAUSED,
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
