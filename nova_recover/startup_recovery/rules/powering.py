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

Mirrors "Recover from POWERING-* state on compute manager start-up"
(nova commit 8f7056f48c, Change-Id
I262be6b13a764bc1355be34cdc0180e8e87f260b, reviews 62038 and 176234,
Closes-Bug 1304333; merged 2014-04-09), part of blueprint
recover-stuck-state.

States owned: task_state POWERING_OFF in any vm_state (ERROR and
RESCUED included, which stock nova 34 skips for ERROR) and POWERING_ON.

Differs from the original: a guest already in the target power state
only gets its state recorded, and ERROR and RESCUED instances are
covered too.

A start whose guest already runs is recorded ACTIVE; when that start
was the unshelve of a SHELVED server, what the shelve kept (its snapshot
in glance, its shelved keys) is dropped too, as start_instance does.
Otherwise the stop or start is re-run as the user asked for it. The
API's stop always asks for a clean shutdown, and the retried stop does
too: that stop_instance started proves nothing about the guest having
had its shutdown request, so cutting its power would risk its disks for
no reason. A stop of a guest that is gone ends in STOPPED, which is what
the hypervisor shows: the database never ends up contradicting the
hypervisor.
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states

from .. import base
from .. import glance_cleanup
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('powering')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()

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
    manager.stop_instance(
        base.rerun_context(context, instance, instance_actions.STOP),
        instance, clean_shutdown=True)
    return base.HANDLED


def _start(manager, context, instance, current):
    if current == power_state.RUNNING:
        LOG.info('Start interrupted by a nova-compute restart and the guest '
                 'runs, recording it as active', instance=instance)
        # The unshelve of a shelved (not offloaded) server is this start:
        # once it runs, start_instance drops what shelve kept, and so
        # does this, or the user keeps paying for the snapshot.
        snapshot_id = None
        if instance.vm_state == vm_states.SHELVED:
            snapshot_id = instance.system_metadata.get('shelved_image_id')
            compute_utils.remove_shelved_keys_from_system_metadata(instance)
        if (base.settle(instance, task_states.POWERING_ON, task_state=None,
                        vm_state=vm_states.ACTIVE, power_state=current) and
                snapshot_id):
            manager._delete_snapshot_of_shelved_instance(
                glance_cleanup.image_context(context), instance,
                snapshot_id)
        return base.HANDLED
    LOG.info('Start interrupted by a nova-compute restart, retrying it',
             instance=instance)
    manager.start_instance(
        base.rerun_context(context, instance, instance_actions.START),
        instance)
    return base.HANDLED
