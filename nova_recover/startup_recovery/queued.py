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

"""The engine's gate for requests that may still be on the queue.

Beyond the blueprint, which left this case open: it recovered every
instance it found in a transitional state, and so threw away a request
cast while nova-compute was down. Here an instance whose request shows
no sign of having reached this host (evidence.py) is held back from
recovery and watched by the deferred sweep (sweep.py), which takes the
request as lost only once this service has consumed its queue for
``[recover] queued_request_grace`` and the request still has not
arrived; the instance is then left as it was before the request, and
the request's action says it was lost. An instance whose step here
finished and handed the operation on (a destination's revert_resize
casts the rest to the source) is held back too, and not watched: the
next step settles it. Evidence that cannot be read proves nothing, so
it holds the instance back too: unknown is never "started". The
evidence of every instance that needs it is read at once, beside
start-up (read_ahead.py). Once an instance is recovered, the action
events that the dead process left open are finished as Error, and a
snapshot that its rule found interrupted after nova had finished its
event at the hand-off gets an Error event that says so.
"""

import functools

from oslo_log import log as logging

from . import base
from . import events
from . import evidence
from . import lost_request
from . import read_ahead
from . import sweep

LOG = logging.getLogger(__name__)


def holds(request):
    """Whether the instance must be left for a request still queued.

    A contracts.Gate. lost_request.recover_lost is what the sweep calls
    once the request is taken as lost. The instance of a host pass
    (request.migration) is another host's: its request is left to run if
    it may still come (reached_here), and never watched.
    """
    manager, context, instance = (request.manager, request.context,
                                  request.instance)
    if request.migration is not None:
        return not reached_here(manager, context, instance,
                                request.unshown)
    # At the first instance of a start-up; a dictionary look-up after.
    read_ahead.start(manager, context)
    if (request.task_state not in evidence.API_SET or
            not evidence.needs_evidence(instance)):
        return False
    operation = base.operation_of(instance)
    try:
        queued = evidence.queued(manager, context, instance,
                                 read_ahead.take(manager, instance))
    except Exception as exc:
        LOG.warning('Could not tell whether the %(op)s request reached this '
                    'host (%(error)s); leaving the instance for it and '
                    'asking again later',
                    {'op': operation, 'error': exc}, instance=instance)
        queued = True
    else:
        if queued:
            LOG.info('The %(op)s request may still be queued for this '
                     'host; leaving the instance for it', {'op': operation},
                     instance=instance)
    if queued and evidence.handed_on_here(manager, instance):
        # Not ours to settle, nor to take as lost: the next step's.
        LOG.info('This host finished its step of the %(op)s and handed '
                 'the rest on; leaving the instance to the next step',
                 {'op': operation}, instance=instance)
    elif queued:
        sweep.watch(manager, instance, functools.partial(
            lost_request.recover_lost, held=request))
    return queued


def check_options(rules):
    """No option of this gate can be wrong. A contracts.Gate."""


def serving(manager):
    """The RPC server runs: the sweep's grace starts counting now."""
    sweep.serving(manager)


def finished(manager):
    """Nothing to report: the sweep says what it does as it does it."""


def recovered(request, outcome):
    """Let the action events tell what the restart did to the request.

    A request that died here has its open events finished as interrupted;
    one that never arrived gets an Error event that says it was lost, the
    only trace it leaves. A failure here never undoes or blocks the
    recovery itself.
    """
    manager, context, instance, task_state = (
        request.manager, request.context, request.instance,
        request.task_state)
    notes = base.take_notes(manager, instance)
    if request.unshown is not None:
        close_request(manager, context, instance, request.unshown)
    if task_state is None:
        return
    try:
        if outcome == base.LOST:
            events.note_lost(manager, context, instance, task_state)
        else:
            completed = (('snapshot_instance',)
                         if base.SNAPSHOT_FINISHED in notes else ())
            events.close_interrupted(manager, context, instance,
                                     task_state, completed=completed)
    except Exception:
        LOG.exception('Could not record on the instance action what the '
                      'restart did to the request', instance=instance)
    if base.SNAPSHOT_INTERRUPTED in notes:
        try:
            events.note_snapshot_interrupted(manager, context, instance)
        except Exception:
            LOG.exception('Could not record on the instance action that '
                          'the snapshot was interrupted', instance=instance)


def reached_here(manager, context, instance, request=None):
    """Whether an operation found by its migration reached this host.

    For the start-up passes over migrations (order.HOST_PASSES), whose
    instances init_instance never sees: an
    evacuation to this host belongs to the source until it ends, and a
    confirm leaves no task_state. ``request`` names a request that no
    task_state shows (evidence.UNSHOWN); without it the task_state's
    request is looked for. Unlike holds, an instance whose request may
    still be queued is not watched by the sweep: the request is left to
    run when this service consumes it, and nothing here may take it as
    lost, since the instance is not this host's to settle. Evidence that
    cannot be read proves nothing: it never means "reached".
    """
    operation = evidence.UNSHOWN.get(request)
    name = request or base.operation_of(instance)
    try:
        waiting = evidence.queued(manager, context, instance,
                                  operation=operation)
    except Exception as exc:
        LOG.warning('Could not tell whether the %(op)s request reached this '
                    'host (%(error)s); leaving the instance for it',
                    {'op': name, 'error': exc}, instance=instance)
        return False
    if waiting:
        LOG.info('The %(op)s request may still be queued for this host; '
                 'leaving the instance for it', {'op': name},
                 instance=instance)
    return not waiting


def close_request(manager, context, instance, request):
    """Finish, as Error, the open events of a request no task_state shows.

    recovered() finds a request's events by the task_state; a confirm
    has none, so its interrupted compute_confirm_resize event is named
    here. Never raises: the recovery is done whatever this does.
    """
    try:
        events.close_interrupted(
            manager, context, instance, None,
            methods=evidence.UNSHOWN[request].methods)
    except Exception:
        LOG.exception('Could not record on the instance action what the '
                      'restart did to the request', instance=instance)
