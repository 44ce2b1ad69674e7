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

"""What every start-up recovery rule shares.

A rule module is a contracts.Rule: it states STATES and OWNED_VM_STATES
and exposes ``owns(instance)`` and ``recover(manager, context,
instance)``. ``recover`` returns HANDLED when the instance needs nothing
more at start-up, or CONTINUE when the transitional state is cleaned and
nova's own start-up path (plug VIFs, resume the guest) must still run.
It may raise: the engine backs off on a lost compare-and-swap
(UnexpectedTaskStateError) and turns any other exception into ERROR plus
an instance fault. contracts.py says why.

This module must not import nova.compute.manager: the patch series puts
these modules under nova/compute, where the manager imports them.
"""

from oslo_context import context as oslo_context
from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import exception
from nova.i18n import _
from nova import objects

from . import registry
from . import state

LOG = logging.getLogger(__name__)

HANDLED = 'handled'
CONTINUE = 'continue'

# How the engine's recovery of one instance ended.
RECOVERED = 'recovered'
ERRORED = 'errored'
FAILED = 'failed'
LOST_RACE = 'lost-race'
# The request never reached this host: the instance is as it was before
# it, and only the request's action tells that it was lost.
LOST = 'lost'

# What a rule found out that only the request's instance action can tell
# the owner; the gates write it there once the rule is done (see
# tell_owner).
SNAPSHOT_INTERRUPTED = 'snapshot-interrupted'
# The snapshot's upload had finished and only the record of it died: the
# request's event, if still open, is finished as Success.
SNAPSHOT_FINISHED = 'snapshot-finished'

# The operation a task_state belongs to, as an operator would name it in
# an instance fault.
OPERATIONS = {state.name: state.operation
              for state in registry.TASK_STATES}

# The vm_state that a guest in each power state shows, for rules that
# settle an instance from what the hypervisor reports. A guest that is not
# there (NOSTATE) has no entry: what that means is each rule's to decide.
VM_STATE_OF_GUEST = {
    power_state.RUNNING: vm_states.ACTIVE,
    power_state.PAUSED: vm_states.PAUSED,
    power_state.SUSPENDED: vm_states.SUSPENDED,
    power_state.SHUTDOWN: vm_states.STOPPED,
    power_state.CRASHED: vm_states.STOPPED,
}


class RecoveryFailed(exception.NovaException):
    msg_fmt = _("%(operation)s interrupted by nova-compute restart: "
                "%(reason)s")


class Interrupted(exception.NovaException):
    msg_fmt = _("%(operation)s interrupted by nova-compute restart")


def field(instance, name):
    """An instance field, None where it is not loaded.

    Nova always loads task_state and vm_state for start-up, but an object
    built by hand may lack one; reading it would lazy-load it from the
    database, which is not what start-up's bookkeeping should do.
    """
    is_set = getattr(instance, 'obj_attr_is_set', None)
    if is_set is not None and not is_set(name):
        return None
    return getattr(instance, name)


def operation_of(instance, task_state=None):
    """Name the operation that an instance's task_state belongs to."""
    task_state = task_state or instance.task_state
    if task_state is None and instance.vm_state == vm_states.BUILDING:
        return 'build'
    if task_state is None and instance.vm_state == vm_states.DELETED:
        return 'delete'
    if (task_state == task_states.SPAWNING and
            field(instance, 'vm_state') == vm_states.SHELVED_OFFLOADED):
        # _unshelve_instance spawns an offloaded server under SPAWNING.
        return 'unshelve'
    return OPERATIONS.get(task_state, task_state or 'start-up')


def settle(instance, expected_task_state, **fields):
    """Compare-and-swap the instance out of a transitional state.

    Returns False when the instance moved on under us (a request arrived,
    or it was deleted): that request wins and the rule backs off.
    """
    for name, value in fields.items():
        setattr(instance, name, value)
    try:
        instance.save(expected_task_state=expected_task_state)
    except (exception.UnexpectedTaskStateError,
            exception.InstanceNotFound) as exc:
        LOG.info('Start-up recovery lost a race, leaving the instance '
                 'alone: %s', exc, instance=instance)
        return False
    return True


def set_error(context, instance, expected_task_state, fault):
    """Put the instance in ERROR and record why as an instance fault.

    The state change goes first, as a compare-and-swap: a fault beside an
    instance that did not change would tell the operator a wrong story.
    """
    if not settle(instance, expected_task_state,
                  vm_state=vm_states.ERROR, task_state=None):
        return False
    try:
        compute_utils.add_instance_fault_from_exc(context, instance, fault)
    except Exception:
        LOG.exception('Could not record the instance fault %s', fault,
                      instance=instance)
    return True


def interrupted(instance, task_state=None, reason=None):
    """The fault that says which operation the restart interrupted."""
    operation = operation_of(instance, task_state)
    if reason is None:
        return Interrupted(operation=operation)
    return RecoveryFailed(operation=operation, reason=reason)


def rerun_context(context, instance, action):
    """A context, under an instance action of its own, to re-run a method.

    Nova finishes an action event by (action, event name) and takes the
    first match. A re-run under the interrupted request's action would so
    finish the interrupted event, not its own, and leave its own open; a
    new action, recorded through nova-conductor like any other, keeps the
    two apart. If it cannot be recorded the re-run goes on without it.
    """
    rerun = context.elevated()
    rerun.request_id = oslo_context.generate_request_id()
    try:
        objects.InstanceAction.action_start(rerun, instance.uuid, action,
                                            want_result=False)
    except Exception as exc:
        LOG.warning('Could not record the %(action)s action of the '
                    'start-up re-run: %(error)s',
                    {'action': action, 'error': exc}, instance=instance)
        return context
    return rerun


def tell_owner(manager, instance, note):
    """Leave a note for the request's action, e.g. SNAPSHOT_INTERRUPTED.

    A rule knows what happened to the request but not how nova records
    it: the gates own the instance action's events (queued.recovered),
    and write the note there after the rule, as they write that a request
    was lost or interrupted.
    """
    state.of(manager).notes.setdefault(instance.uuid, set()).add(note)


def take_notes(manager, instance):
    """The notes rules left for the instance, removed from the manager."""
    notes = state.of(manager).notes
    if not notes:
        # Most start-ups: no rule left a note, and an instance that no
        # rule touched need not even have its uuid loaded.
        return set()
    return notes.pop(instance.uuid, set())
