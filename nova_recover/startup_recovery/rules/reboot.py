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

"""Finish or settle a reboot that nova-compute did not finish.

Mirrors "Recover from REBOOT-* state on compute manager start-up" (nova
commit cc0be157d0, Change-Id Ib318b3d444a67616441302f3daa8de20ee946f3f,
review 57967; merged 2014-03-12), part of blueprint recover-stuck-state.

States owned: task_state REBOOT_PENDING(_HARD), REBOOTING(_HARD) and
REBOOT_STARTED(_HARD) on every vm_state that allows a hard reboot
(ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR). Stock nova 34 skips the
ERROR ones, so they stay stuck.

Differs from the original: ERROR instances are recovered too, a
started reboot that left the guest down becomes a hard reboot rather
than a retry of the same kind, and a guest that runs after the driver
was called only gets its state recorded instead of being rebooted again.
A running guest in REBOOTING(_HARD) is rebooted, where stock nova 34
records it as ACTIVE and drops the reboot.

A reboot the driver was not called for yet is retried with its own
reboot type, whatever the guest's power state: REBOOT_PENDING(_HARD),
and also REBOOTING(_HARD), because reboot_instance saves the PENDING
state before it calls the driver, so REBOOTING at start-up (once the
engine's gate found that the request reached this host) means the guest
was never rebooted, and a hard reboot asked for a hung guest must not
be dropped. A soft reboot becomes a hard one where the guest is down, or
where the vm_state allows no soft reboot; the task state moves to
REBOOT_PENDING_HARD first, by compare-and-swap, because reboot_instance
expects a hard task state for a hard reboot (it expects any state of
the reboot's own kind, REBOOTING(_HARD) included, so the others are
re-run as they are).

REBOOT_STARTED(_HARD) means the driver was called. A guest that runs
has rebooted, or is rebooting, and only needs its state recorded; a guest
left down gets a hard reboot, which brings it up from its disks. Either
way vm_state and power_state agree with the guest afterwards.
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)

# Set by the API: reboot_instance has not got as far as its first save.
REQUESTED = frozenset([task_states.REBOOTING,
                       task_states.REBOOTING_HARD])
# Saved by reboot_instance before it calls the driver.
PENDING = frozenset([task_states.REBOOT_PENDING,
                     task_states.REBOOT_PENDING_HARD])
# Saved by reboot_instance just before it calls the driver.
STARTED = frozenset([task_states.REBOOT_STARTED,
                     task_states.REBOOT_STARTED_HARD])
STATES = registry.owned_by('reboot')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return (instance.task_state in STATES and
            instance.vm_state in vm_states.ALLOW_HARD_REBOOT)


def _needs_reboot(instance, current_power_state):
    if instance.task_state not in STARTED:
        # The driver was never called: the guest was not rebooted.
        return True
    return current_power_state != power_state.RUNNING


def recover(manager, context, instance):
    current = manager._get_power_state(instance)
    task_state = instance.task_state
    if not _needs_reboot(instance, current):
        LOG.info('Reboot interrupted by a nova-compute restart and the '
                 'guest runs, clearing task state %s', task_state,
                 instance=instance)
        base.settle(instance, task_state, task_state=None,
                    vm_state=vm_states.ACTIVE, power_state=current)
        return base.HANDLED
    reboot_type = compute_utils.get_reboot_type(task_state, current)
    if (reboot_type == 'SOFT' and
            instance.vm_state not in vm_states.ALLOW_SOFT_REBOOT):
        reboot_type = 'HARD'
    if (reboot_type == 'HARD' and
            task_state not in task_states.hard_reboot_states):
        # A soft reboot that got as far as stopping the guest is now a
        # hard one, and reboot_instance expects the hard task states.
        if not base.settle(instance, task_state,
                           task_state=task_states.REBOOT_PENDING_HARD):
            return base.HANDLED
    LOG.info('Reboot interrupted by a nova-compute restart, retrying it '
             'as a %s reboot', reboot_type, instance=instance)
    manager.reboot_instance(
        base.rerun_context(context, instance, instance_actions.REBOOT),
        instance, block_device_info=None, reboot_type=reboot_type)
    return base.HANDLED
