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

"""Leave a server as it was before a request that never came.

The gate for queued requests (queued.py) holds an instance whose request
may still be on the queue; when the deferred sweep (sweep.py) finds the
request lost, it calls recover_lost. Nothing of the request ran here,
so this is not a rule: it undoes nothing and finishes nothing.
"""

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import vm_states

from . import base
from . import contracts

LOG = logging.getLogger(__name__)


def recover_lost(manager, context, instance, held):
    """Leave an instance as it was before a request that never came.

    The gate for queued requests hands it, bound to ``held`` (the
    GateRequest of the instance it held back), to the sweep, which calls
    it once a request taken as queued turns out lost; held.nova_path and
    held.report are the engine's. The request never ran here,
    so no rule applies: a rule undoes or finishes what a dead process
    did, and here nothing was done. The task is cleared, the vm_state is
    the one the guest shows, nothing is destroyed, and nova's own
    start-up path, which start-up skipped for the held instance, runs
    now. The gates hear of it as LOST, so the request's action can say
    that it was lost.
    """
    task_state = base.field(instance, 'task_state')
    current = manager._get_power_state(instance)
    vm_state = _vm_state_before(instance, current)
    LOG.warning('The %(op)s request never reached this host; clearing '
                'task_state %(task_state)s and leaving the instance '
                '%(vm_state)s', {'op': base.operation_of(instance),
                                 'task_state': task_state,
                                 'vm_state': vm_state}, instance=instance)
    if base.settle(instance, task_state, task_state=None, vm_state=vm_state,
                   power_state=current):
        held.nova_path(context, instance)
        outcome = base.LOST
    else:
        outcome = base.LOST_RACE
    # No rule ran: the request never did.
    held.report(contracts.GateRequest(
        manager=manager, context=context, instance=instance,
        task_state=task_state, rule=None, nova_path=held.nova_path,
        report=held.report), outcome)


# The vm_states that only say how the guest runs; the others (RESIZED,
# SHELVED, RESCUED, SOFT_DELETED, ERROR...) say more than a power state
# can, and a lost request leaves them as they are.
_POWER_VM_STATES = frozenset([vm_states.ACTIVE, vm_states.STOPPED,
                              vm_states.PAUSED, vm_states.SUSPENDED])


def _vm_state_before(instance, current):
    """The vm_state to leave a server in whose request never came."""
    vm_state = instance.vm_state
    if vm_state not in _POWER_VM_STATES:
        return vm_state
    if vm_state == vm_states.SUSPENDED and current == power_state.SHUTDOWN:
        # libvirt shows a managed-saved (suspended) guest as shut off.
        return vm_state
    return base.VM_STATE_OF_GUEST.get(current, vm_state)
