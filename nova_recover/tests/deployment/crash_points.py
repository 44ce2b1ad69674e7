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
"""Crash points of the deployment's drivers: die or park where told.

``<state_path>/crash.json`` is a list of rules ``{"method": POINT,
"uuid": ... or null, "action": "kill" or "park", ...}``. A driver calls
``CrashPoints.hit(POINT, uuid)`` at each of its crash points: a driver
method's entry (POINT is the method's name) or a named half-state inside
one (``snapshot:managed-saved``, see libvirt_driver.py). When a rule
names the point (and the instance, or none), the hit is recorded in
``<state_path>/parked.log`` and nova-compute either SIGKILLs itself
("kill") or blocks there ("park") until the harness SIGKILLs it. Parking
lets one SIGKILL interrupt many operations at once, as a host crash does.
The file is read on every hit, so the harness arms and disarms it without
a restart.

Loaded as nova.virt.deployment_crash_points by
tools/deployment/pythonpath/sitecustomize.py.
"""

import json
import os
import signal
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# A parked call gives up after this long, so that no nova-compute is left
# behind if the harness itself dies; the harness kills long before.
PARK_SECONDS = 900


class CrashPoints(object):

    def __init__(self, directory):
        self.crash_file = os.path.join(directory, 'crash.json')
        self.parked_file = os.path.join(directory, 'parked.log')

    def rules(self):
        try:
            with open(self.crash_file) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return []

    def rule_for(self, instance_uuid, key):
        """The first rule naming this instance that sets key, or None."""
        for rule in self.rules():
            if rule.get('uuid') == instance_uuid and rule.get(key):
                return rule
        return None

    def hit(self, point, instance_uuid, on_match=None):
        """Die or park here if crash.json names this point.

        on_match(rule) runs first: the fake driver persists the guest
        state the rule gives.
        """
        for rule in self.rules():
            if rule.get('method') != point:
                continue
            if rule.get('uuid') not in (None, instance_uuid):
                continue
            if on_match is not None:
                on_match(rule)
            with open(self.parked_file, 'a') as f:
                f.write('%s %s\n' % (point, instance_uuid))
                f.flush()
                os.fsync(f.fileno())
            LOG.warning('Crash point: %s %s of %s', rule.get('action'),
                        point, instance_uuid)
            if rule.get('action') == 'park':
                deadline = time.monotonic() + PARK_SECONDS
                while time.monotonic() < deadline:
                    time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)
