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

"""Settle a pause, unpause, suspend or resume that nova-compute did not finish.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for SUSPENDING or RESUMING, and handles
PAUSING and UNPAUSING only when the guest runs (cleared to ACTIVE) or,
for UNPAUSING, when it is paused (the unpause is retried).

States owned: task_state PAUSING, UNPAUSING, SUSPENDING and RESUMING, in
any vm_state.

The guest's power state is the truth: the operation either happened on
the hypervisor before nova-compute died or it did not, and the instance
is recorded as the guest is (RUNNING: ACTIVE, PAUSED: PAUSED, SUSPENDED:
SUSPENDED, SHUTDOWN or CRASHED: STOPPED), with that power state, by
compare-and-swap. Two exceptions keep what the user asked for:
an UNPAUSING guest that is still paused is unpaused again, as stock nova
does; and a suspending or resuming guest that is SHUTDOWN is SUSPENDED,
because libvirt shows a suspended (managed-saved) guest as shut off, and
a start of a STOPPED instance would throw its saved memory away while a
resume restores it, or boots the guest if there is nothing to restore.
A guest that is gone from the hypervisor means ERROR with a fault.

Nova's normal start-up path then runs (it plugs the VIFs, as for any
instance in these vm_states); the power state recorded here matches the
guest, so it does not try to resume the guest on top of that.
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states

from nova_recover.recovery import base

LOG = logging.getLogger(__name__)

STATES = frozenset([task_states.PAUSING, task_states.UNPAUSING,
                    task_states.SUSPENDING, task_states.RESUMING])

SUSPEND_STATES = frozenset([task_states.SUSPENDING, task_states.RESUMING])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    task_state = instance.task_state
    current = manager._get_power_state(instance)
    if current not in base.VM_STATE_OF_GUEST:
        LOG.warning('%(op)s interrupted by a nova-compute restart and the '
                    'guest is gone (power state %(power)s), setting the '
                    'instance to ERROR',
                    {'op': base.operation_of(instance).capitalize(),
                     'power': current}, instance=instance)
        base.set_error(context, instance, task_state, base.interrupted(
            instance, reason='the guest is not on the hypervisor'))
        return base.HANDLED
    if (task_state == task_states.UNPAUSING and
            current == power_state.PAUSED):
        LOG.info('Unpause interrupted by a nova-compute restart, retrying '
                 'it', instance=instance)
        manager.unpause_instance(
            base.rerun_context(context, instance, instance_actions.UNPAUSE),
            instance)
        return base.CONTINUE
    vm_state = base.VM_STATE_OF_GUEST[current]
    if task_state in SUSPEND_STATES and current == power_state.SHUTDOWN:
        vm_state = vm_states.SUSPENDED
    LOG.info('%(op)s interrupted by a nova-compute restart, recording the '
             'guest as it is: %(vm_state)s',
             {'op': base.operation_of(instance).capitalize(),
              'vm_state': vm_state}, instance=instance)
    if not base.settle(instance, task_state, task_state=None,
                       vm_state=vm_state, power_state=current):
        return base.HANDLED
    return base.CONTINUE
