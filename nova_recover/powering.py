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

"""Finish a stop or start that nova-compute did not finish.

Mirrors "Recover from POWERING-* state on compute manager start-up",
part of blueprint recover-stuck-state (the blueprint links bug
#1228804). Change-Id: not known to us; nova's release ChangeLog keeps
the subject only.

States owned: task_state POWERING_OFF in any vm_state (ERROR and
RESCUED included, which stock nova 34 skips for ERROR) and POWERING_ON.

The stop or start is re-run, without a clean shutdown because the guest
already had its chance. A guest already in the target power state only
needs its state recorded, and a stop of a guest that is gone ends in
STOPPED, which is what the hypervisor shows. The database never ends up
contradicting the hypervisor.
"""

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states

from nova_recover import base

LOG = logging.getLogger(__name__)

STATES = frozenset([task_states.POWERING_OFF, task_states.POWERING_ON])

# Power states in which nova-compute itself treats a guest as off.
OFF = frozenset([power_state.NOSTATE, power_state.SHUTDOWN,
                 power_state.CRASHED])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    current = manager._get_power_state(instance)
    if instance.task_state == task_states.POWERING_OFF:
        return _stop(manager, context, instance, current)
    return _start(manager, context, instance, current)


def _stop(manager, context, instance, current):
    if current in OFF:
        LOG.info('Stop interrupted by a nova-compute restart and the guest '
                 'is off, recording it as stopped', instance=instance)
        base.settle(instance, task_states.POWERING_OFF, task_state=None,
                    vm_state=vm_states.STOPPED, power_state=current)
        return base.HANDLED
    LOG.info('Stop interrupted by a nova-compute restart, retrying it',
             instance=instance)
    manager.stop_instance(context, instance, clean_shutdown=False)
    return base.HANDLED


def _start(manager, context, instance, current):
    if current == power_state.RUNNING:
        LOG.info('Start interrupted by a nova-compute restart and the guest '
                 'runs, recording it as active', instance=instance)
        base.settle(instance, task_states.POWERING_ON, task_state=None,
                    vm_state=vm_states.ACTIVE, power_state=current)
        return base.HANDLED
    LOG.info('Start interrupted by a nova-compute restart, retrying it',
             instance=instance)
    manager.start_instance(context, instance)
    return base.HANDLED
