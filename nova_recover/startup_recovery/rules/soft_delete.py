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

"""Finish a soft delete or restore that nova-compute did not finish.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for SOFT_DELETING or RESTORING.

States owned: task_state SOFT_DELETING and RESTORING, in any vm_state
(RESTORING sits on SOFT_DELETED, which stock nova skips at start-up).

Both operations can simply run again: soft delete only powers the guest
off and restore only powers it on, and neither touches disks. They are
re-run through the manager methods the RPC calls go to, so vm_state,
power_state, notifications, the instance action and the compare-and-swap
on the task state are exactly those of a normal request. A stuck
SOFT_DELETING instance would otherwise never be reclaimed, and a stuck
RESTORING one never comes back. A restored instance then goes through
nova's normal start-up path like any ACTIVE one. If the re-run fails,
the error reaches the engine, which puts the instance in ERROR with a
fault.
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import task_states

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('soft_delete')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    task_state = instance.task_state
    LOG.info('%s interrupted by a nova-compute restart, running it again',
             base.operation_of(instance).capitalize(), instance=instance)
    # A lost compare-and-swap in the manager method (a newer request, a
    # delete most likely) is the engine's to handle: it backs off.
    if task_state == task_states.SOFT_DELETING:
        # api.soft_delete records the 'delete' action.
        manager.soft_delete_instance(
            base.rerun_context(context, instance, instance_actions.DELETE),
            instance)
        # Nova's start-up path has nothing to do for SOFT_DELETED.
        return base.HANDLED
    manager.restore_instance(
        base.rerun_context(context, instance, instance_actions.RESTORE),
        instance)
    # Restored and ACTIVE: the normal start-up path plugs its VIFs, as
    # for any other ACTIVE instance.
    return base.CONTINUE
