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

"""Say on the request's instance action what the restart did to it.

A request that reached this host and died leaves its compute_<method>
events open: nova finishes an event when its method returns, and the
dead process never returned. A request that never arrived leaves no
event at all, and a snapshot whose event nova finished at the hand-off
to its upload thread leaves a Success over an upload that never ended.
The owner reads the action list (``openstack server event list``), so
start-up writes there what happened: open events finished as Error
(close_interrupted), an Error event that says the request was lost
(note_lost) and one that says the snapshot was cut short
(note_snapshot_interrupted).

Everything goes through remotable objects (nova-conductor), using what
evidence.py read for the instance at start-up, so that closing costs no
read it already made; nothing here ever changes how the instance is
recovered.
"""

from oslo_log import log as logging

from nova.compute import instance_actions as actions
from nova import objects

from . import evidence
from . import state

LOG = logging.getLogger(__name__)


def close_interrupted(manager, context, instance, task_state,
                      methods=None, completed=()):
    """Finish, as Error, the events that the dead process left open.

    Only called for an instance that start-up recovered. The newest
    actions are read, down to the first request of a user that holds an
    event of the operation on this host; those the evidence already read
    are not read again. The actions above it
    are re-runs, which record an action with no user: the one this
    recovery just made, whose event is finished, or one that an earlier
    start-up's death interrupted in turn. Each open event is finished
    through nova-conductor under its own action's request id, which is
    how nova finds the action. ``methods``, if given, name the events
    instead of the task_state (a request that no task_state shows).
    ``completed`` names methods whose work the rule found done, only the
    record of it dying with the process (a snapshot whose upload had
    finished): their open events are finished as Success, as the
    method's return would have. Returns how many events were closed.
    """
    if methods is None:
        methods = evidence.methods_for(task_state)
    names = {evidence.PREFIX + method for method in methods}
    if not names:
        return 0
    record = state.of(manager).evidence.get(instance.uuid)
    if record is None:
        record = evidence.load(context, instance, ())
    # The evidence may have stopped reading at a re-run that an earlier
    # start-up's death interrupted: read on to the request behind it.
    # Actions already read cost nothing.
    readable = [action for action in record.actions
                if action.action not in evidence.API_ONLY]
    for action in readable[:evidence.MAX_ACTIONS]:
        evidence.read_events(context, record, action)
        if action.user_id and any(
                event.action_id == action.id and event.event in names and
                event.host == manager.host for event in record.events):
            break
    by_id = {action.id: action for action in record.actions}
    open_events = {(event.action_id, event.event)
                   for event in record.events
                   if event.event in names and event.host == manager.host and
                   event.finish_time is None}
    done = {evidence.PREFIX + method for method in completed}
    closed = 0
    for action_id, name in sorted(open_events):
        request = context.elevated()
        request.request_id = by_id[action_id].request_id
        if name in done:
            objects.InstanceActionEvent.event_finish(
                request, instance.uuid, name, want_result=False)
        else:
            # nova keeps the details only for an Error, which it tells
            # by the presence of a traceback.
            objects.InstanceActionEvent.event_finish_with_failure(
                request, instance.uuid, name,
                exc_val=evidence.INTERRUPTED,
                exc_tb=evidence.INTERRUPTED, want_result=False)
        closed += 1
    # Closed now: a second call (the sweep) must not touch them again.
    record.events = [event for event in record.events
                     if (event.action_id, event.event) not in open_events]
    if closed:
        LOG.info('Finished %d instance action event(s) that the '
                 'nova-compute restart left open', closed, instance=instance)
    return closed


def note_lost(manager, context, instance, task_state):
    """Close the lost request's action with an Error event that says so.

    The server is left as it was before the request, so this event is
    the only place where its owner reads that the request was dropped
    (``openstack server event list``). The action is the one the sweep
    read (or the newest action of the operation); without one the API
    died before it recorded the request, and there is nothing to note.
    Returns whether an event was written.
    """
    operation = evidence.API_SET.get(task_state)
    if operation is None:
        return False
    record = state.of(manager).evidence.get(instance.uuid)
    if record is None:
        record = evidence.load(context, instance, ())
    action = record.latest(operation.actions)
    if action is None:
        return False
    request = context.elevated()
    request.request_id = action.request_id
    objects.InstanceActionEvent.event_start(
        request, instance.uuid, evidence.LOST_EVENT, want_result=False,
        host=manager.host)
    objects.InstanceActionEvent.event_finish_with_failure(
        request, instance.uuid, evidence.LOST_EVENT, exc_val=evidence.LOST,
        exc_tb=evidence.LOST, want_result=False)
    LOG.warning('Recorded on the %(action)s action that its request was '
                'lost', {'action': action.action}, instance=instance)
    return True


def note_snapshot_interrupted(manager, context, instance):
    """Tell the owner that a snapshot handed off here never completed.

    nova 33 and 34's snapshot_instance hand the snapshot to their
    long-task pool and return, which finishes the compute_snapshot_instance
    event with Success before anything is snapshotted; an interrupted
    event is closed by close_interrupted only while it is still open, as
    nova 31's is, whose snapshot runs in the request's own worker. So when the
    request's event finished Success on this host, and the image task
    died with nova-compute, an Error event
    (evidence.SNAPSHOT_INTERRUPTED_EVENT) is written on the request's
    action: without it the only trace of the snapshot says Success. The
    request is the newest createImage or createBackup action; a backup
    runs in its RPC worker, hands nothing off and leaves its own event
    open, so it is not noted here. Returns
    whether an event was written.

    :raises evidence.Unreadable: the conductor could not be asked.
    """
    names = (actions.CREATE_IMAGE, actions.BACKUP)
    record = state.of(manager).evidence.get(instance.uuid)
    if record is None or record.latest(names) is None:
        record = evidence.load(context, instance, names)
    action = record.latest(names)
    if action is None or action.action != actions.CREATE_IMAGE:
        return False
    try:
        evidence.read_events(context, record, action)
    except Exception as exc:
        raise evidence.Unreadable('%s: %s' % (type(exc).__name__, exc))
    events = [event for event in record.events
              if event.action_id == action.id]
    snapshot = [event for event in events
                if event.event == evidence.PREFIX + 'snapshot_instance' and
                event.host == manager.host]
    handed_off = bool(snapshot) and all(
        event.finish_time is not None and event.result == evidence.SUCCESS
        for event in snapshot)
    if not handed_off or any(event.event == evidence.SNAPSHOT_INTERRUPTED_EVENT
                             for event in events):
        # Never reached here, still open (close_interrupted's), or
        # already noted.
        return False
    request = context.elevated()
    request.request_id = action.request_id
    objects.InstanceActionEvent.event_start(
        request, instance.uuid, evidence.SNAPSHOT_INTERRUPTED_EVENT,
        want_result=False, host=manager.host)
    objects.InstanceActionEvent.event_finish_with_failure(
        request, instance.uuid, evidence.SNAPSHOT_INTERRUPTED_EVENT,
        exc_val=evidence.SNAPSHOT_INTERRUPTED,
        exc_tb=evidence.SNAPSHOT_INTERRUPTED,
        want_result=False)
    LOG.warning('Recorded on the createImage action that the snapshot was '
                'interrupted by the nova-compute restart', instance=instance)
    return True
