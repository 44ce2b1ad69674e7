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

The guest's power state tells whether the request took effect before
nova-compute died. Where it did not, the request is re-run, since the
user asked for it and the engine's gate found that it reached this
host: a PAUSING or SUSPENDING guest that still runs is paused or
suspended through pause_instance or suspend_instance (stock nova 34
records a running PAUSING guest as ACTIVE and drops the pause); an
UNPAUSING guest still paused is unpaused, as stock nova does; a RESUMING
guest still SUSPENDED, or SHUTDOWN, is resumed through resume_instance.
Each of these methods saves by compare-and-swap from the very task state
found here, and runs under an instance action of its own.

A resume is re-run rather than SUSPENDED recorded because the user asked
to resume: on libvirt a suspended (managed-saved) guest shows as shut
off, and a resume restores its saved memory, or boots the guest from its
disks if there is nothing to restore; resume_instance also brings back
the vm_state that suspend kept in system_metadata.

Otherwise the instance is recorded as the guest is (RUNNING: ACTIVE,
PAUSED: PAUSED, SUSPENDED: SUSPENDED, SHUTDOWN or CRASHED: STOPPED),
with that power state, by compare-and-swap: the operation took effect,
or the guest went elsewhere. A suspending guest that is SHUTDOWN is the
exception and is recorded SUSPENDED, because that is how libvirt shows a
suspended guest, and a start of a STOPPED instance would throw its saved
memory away while a resume restores it. A guest that is gone from the
hypervisor means ERROR with a fault.

Nova's normal start-up path then runs (it plugs the VIFs, as for any
instance in these vm_states); the power state saved here, or by the
re-run method, matches the guest, so it does not try to resume the
guest on top of that.
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('pause_suspend')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()

# By task_state: the guest power states that show the request did not
# take effect, the manager method that re-runs it and its action.
RERUN = {
    task_states.PAUSING: (frozenset([power_state.RUNNING]),
                          'pause_instance', instance_actions.PAUSE),
    task_states.UNPAUSING: (frozenset([power_state.PAUSED]),
                            'unpause_instance', instance_actions.UNPAUSE),
    task_states.SUSPENDING: (frozenset([power_state.RUNNING]),
                             'suspend_instance', instance_actions.SUSPEND),
    task_states.RESUMING: (frozenset([power_state.SUSPENDED,
                                      power_state.SHUTDOWN]),
                           'resume_instance', instance_actions.RESUME),
}


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
    not_done, method, action = RERUN[task_state]
    if current in not_done:
        LOG.info('%(op)s interrupted by a nova-compute restart before the '
                 'guest changed (power state %(power)s), retrying it',
                 {'op': base.operation_of(instance).capitalize(),
                  'power': current}, instance=instance)
        getattr(manager, method)(
            base.rerun_context(context, instance, action), instance)
        return base.CONTINUE
    vm_state = base.VM_STATE_OF_GUEST[current]
    if (task_state == task_states.SUSPENDING and
            current == power_state.SHUTDOWN):
        vm_state = vm_states.SUSPENDED
    LOG.info('%(op)s interrupted by a nova-compute restart, recording the '
             'guest as it is: %(vm_state)s',
             {'op': base.operation_of(instance).capitalize(),
              'vm_state': vm_state}, instance=instance)
    if not base.settle(instance, task_state, task_state=None,
                       vm_state=vm_state, power_state=current):
        return base.HANDLED
    return base.CONTINUE
