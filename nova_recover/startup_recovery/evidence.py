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

"""Tell an operation that reached this host from one still queued.

At start-up an instance can carry a task_state that was saved before an
RPC cast to this host. Either the request reached this host and died
with the old process (recover it), or nova-compute was down when it was
cast and the request still waits on the queue (leave the instance
alone: the request runs as soon as this service consumes it).

Nova already writes what tells the two apart, so reading it costs no new
write: the API records an InstanceAction for the request before it
casts, and wrap_instance_event records a ``compute_<method>``
InstanceActionEvent, with this host's name, as soon as the manager
method starts. An event of the operation's method on this host, on the
latest action matching the task_state or on a later one, means the
request reached this host.

Why "or a later one": a recovery re-run (stock's or ours) calls the
decorated manager method with an admin context, and nova then attaches
the event to the instance's last action of any kind. Such an event still
proves the operation ran here after the request, so it counts; an event
on an older action of the same name (a previous, finished request) does
not.

Why "exists", not "unfinished": snapshot_instance hands its work to a
thread and its event may finish while the upload runs, and a previous
start-up may already have closed an interrupted event.

Everything is read through remotable objects, which nova-conductor
serves: nova-compute has no database. Nothing found, or nothing
readable, never means "started": the caller leaves the instance for its
request and the deferred sweep (sweep.py).

Cost, in conductor round trips: none for an instance without a
task_state or with a state only nova-compute sets; for a candidate, one
for its newest READ_LIMIT actions plus one per action from the newest
down to the matching one, so two in the common case and at most 1 +
MAX_ACTIONS. Actions that only the API records (lock, unlock, see
API_ONLY) are neither read nor counted. A request further back than
that is unreadable for good (TooFarBack), which the deferred sweep ages
out. At start-up those reads are made beside init_host, all candidates
at once, for one more round trip per start-up (read_ahead.py).
"""

import collections

from oslo_log import log as logging

from nova.compute import instance_actions as actions
from nova.compute import task_states
from nova.compute import vm_states
from nova import objects

from . import registry
from . import state

LOG = logging.getLogger(__name__)

Operation = collections.namedtuple('Operation', ['actions', 'methods'])

# task_state saved before a cast to this host -> (instance actions that
# request records, compute manager methods whose wrap_instance_event
# proves it reached a host). registry.py holds the reasons, and
# doc/source/coverage.rst shows the table.
API_SET = {state.name: Operation(state.actions, state.methods)
           for state in registry.TASK_STATES if state.checked}

# Requests that nova-api casts without saving any task_state, by the
# manager method that runs them. confirmResize leaves the server RESIZED
# with no task (nova 34 never saves RESIZE_CONFIRMING) and only the
# migration's 'confirming' status shows the request; start-up finds those
# by their migration (rules/resize.py) and asks here whether the confirm
# reached this host.
_CONFIRMING = registry.BY_NAME[task_states.RESIZE_CONFIRMING]
UNSHOWN = {
    'confirm_resize': Operation(_CONFIRMING.actions, _CONFIRMING.methods),
}

# States that only nova-compute saves (or, for DELETING and SCHEDULING,
# that start-up recovers whatever their request did): reached by
# definition. The methods name the events that an interrupted run left
# open, so close_interrupted can finish them.
REACHED = {state.name: state.methods for state in registry.TASK_STATES
           if state.set_by and not state.checked}

# Manager methods that end by casting the operation's next step to a
# compute (or whose caller, the conductor, then runs it elsewhere), with
# the task state unchanged: their finished event is a hand-off, not a
# death.
HANDS_ON = frozenset(method for state in registry.TASK_STATES
                     for method in state.hands_on)
SUCCESS = 'Success'

PREFIX = 'compute_'
INTERRUPTED = 'Interrupted by a nova-compute restart'
# The event that tells the owner a request was lost. Not the name of any
# manager method, so it never passes for proof that a request arrived.
LOST_EVENT = 'compute_request_lost'
LOST = ('The request never reached nova-compute on this host and was '
        'dropped; the server is as it was before it')
# The event that tells the owner a snapshot handed to nova's long-task
# pool died with nova-compute. snapshot_instance finishes its
# compute_snapshot_instance event (Success) once it hands the snapshot
# to the pool, so that event says nothing of the snapshot itself. Not
# the name of any manager method either.
SNAPSHOT_INTERRUPTED_EVENT = 'compute_snapshot_interrupted'
SNAPSHOT_INTERRUPTED = ('The snapshot did not complete: nova-compute '
                        'restarted before its image was uploaded')
# Actions whose events are read at most, newest first, down to and
# including the request's own: past that the evidence is unreadable
# (TooFarBack), and so the request possibly queued.
MAX_ACTIONS = 5
# Actions that nova records without ever running a compute manager
# method for them: lock and unlock run in the API (their events are
# api_lock and api_unlock), os-resetState too. They carry no compute
# event of a request, so their events are not read and they do not count
# toward MAX_ACTIONS: a user may lock and unlock a server as often as
# they like while a request is queued for it. (A start-up re-run that
# attached its event to one of them, as nova does with the last action
# when it finds none by request id, goes unseen: the request then reads
# as queued, never as started.)
API_ONLY = frozenset([actions.LOCK, actions.UNLOCK, actions.RESET_STATE])
# Actions asked of nova-conductor at most, newest first: MAX_ACTIONS
# plus room for API-only ones. A full list without the request's action
# means the request lies further back (TooFarBack), not that it has none.
READ_LIMIT = 50

Action = collections.namedtuple(
    'Action', ['id', 'action', 'request_id', 'start_time', 'user_id'])
Event = collections.namedtuple(
    'Event', ['id', 'action_id', 'event', 'host', 'finish_time', 'result'])


class Unreadable(Exception):
    """The evidence could not be read; nothing may be concluded."""


class TooFarBack(Unreadable):
    """The request lies further back than is read, now and for good.

    ``requested`` is the request's start time when its action was among
    those read, else None.
    """

    def __init__(self, message, requested=None):
        super().__init__(message)
        self.requested = requested


class Record(object):
    """The newest actions of one instance and the events read of them.

    ``actions`` is newest first; ``events`` holds the events of the
    actions in ``read`` (the newest ones, down to the one looked for).
    """

    def __init__(self, uuid, updated_at, action_list):
        self.uuid = uuid
        self.updated_at = updated_at
        self.actions = action_list
        self.events = []
        self.read = set()

    def latest(self, names):
        """The newest action named in names, or None."""
        for action in self.actions:
            if action.action in names:
                return action
        return None

    def actions_since(self, action):
        """The actions from the newest down to and including action."""
        return self.actions[:self.actions.index(action) + 1]

    def full(self):
        """Whether older actions may exist beyond those read."""
        return len(self.actions) >= READ_LIMIT


def needs_evidence(instance):
    """Whether queued() has to read anything for this instance."""
    return (instance.task_state in API_SET and
            instance.vm_state != vm_states.BUILDING)


def queued(manager, context, instance, record=None, operation=None):
    """Whether the request behind instance.task_state may still be queued.

    True only for a task_state saved before a cast to this host, when
    nothing shows that the request reached this host. ``record``, if
    given, is the instance's evidence as read ahead (read_ahead.py).
    ``operation``, if given, is the request to look for instead of the
    task_state's, for a request that no task_state shows (UNSHOWN).

    :raises Unreadable: the conductor could not be asked, or (TooFarBack)
        the request lies further back than MAX_ACTIONS or READ_LIMIT; the
        caller must then treat the request as possibly queued.
    """
    if operation is None:
        if not needs_evidence(instance):
            return False
        operation = API_SET[instance.task_state]
    if record is None:
        record = load(context, instance, operation.actions)
    remember(manager, record)
    return not reached(record, operation, manager.host)


def load(context, instance, names):
    """Read the instance's actions and the events that may prove names.

    One round trip for the newest READ_LIMIT actions, then one per action
    from the newest down to the newest one named in names, API-only
    actions (API_ONLY) left out.
    """
    try:
        action_list = [
            Action(a.id, a.action, a.request_id, a.start_time or a.created_at,
                   a.user_id)
            for a in objects.InstanceActionList.get_by_instance_uuid(
                context, instance.uuid, limit=READ_LIMIT)]
        record = Record(instance.uuid,
                        instance.updated_at or instance.created_at,
                        action_list)
        target = record.latest(names)
        if target is None:
            if names and record.full():
                raise TooFarBack('no %s request among the newest %d actions'
                                 % ('/'.join(names), READ_LIMIT))
            return record
        wanted = [action for action in record.actions_since(target)
                  if action.action not in API_ONLY]
        if len(wanted) > MAX_ACTIONS:
            raise TooFarBack('%d actions recorded since the %s request'
                             % (len(wanted) - 1, target.action),
                             requested=target.start_time)
        for action in wanted:
            read_events(context, record, action)
    except Unreadable:
        raise
    except Exception as exc:
        raise Unreadable('%s: %s' % (type(exc).__name__, exc))
    return record


def read_events(context, record, action):
    if action.id in record.read:
        return
    for event in objects.InstanceActionEventList.get_by_action(
            context, action.id):
        record.events.append(Event(event.id, action.id, event.event,
                                   event.host, event.finish_time,
                                   event.result))
    record.read.add(action.id)


def _events_here(record, operation, host):
    """The events of the operation on host since its request."""
    target = record.latest(operation.actions)
    if target is None:
        return []
    since = {action.id for action in record.actions_since(target)}
    names = {PREFIX + method for method in operation.methods}
    return [event for event in record.events
            if event.action_id in since and event.event in names and
            event.host == host]


def arrived(record, operation, host):
    """Whether the operation ran on host after its request at all.

    Once the service runs, that is all the sweep needs to know: a
    request that arrived is the running service's, or its next step's.
    """
    return bool(_events_here(record, operation, host))


def reached(record, operation, host):
    """Whether the operation ran on host after its request, not handed on.

    An event of the operation's method on host proves it, unless every
    such event is of a method that hands the operation on and finished
    well (handed_on): then the operation did not die here.
    """
    events = _events_here(record, operation, host)
    return bool(events) and not _handed_on(events)


def handed_on(record, operation, host):
    """Whether host finished its step and handed the operation on.

    nova's revert_resize ends by casting finish_revert_resize to the
    source, and prep_resize by casting resize_instance; the instance
    keeps its task state until that next step saves. Such an event that
    finished with Success, and nothing after it here, means the next
    step belongs to another service (or to this one's queue): the
    instance is neither dead here nor a request that may be lost.
    """
    return _handed_on(_events_here(record, operation, host))


def _handed_on(events):
    names = {PREFIX + method for method in HANDS_ON}
    return bool(events) and all(
        event.event in names and event.finish_time is not None and
        event.result == SUCCESS for event in events)


def handed_on_here(manager, instance):
    """handed_on for the instance's evidence as start-up read it."""
    record = state.of(manager).evidence.get(instance.uuid)
    operation = API_SET.get(instance.task_state)
    if record is None or operation is None:
        return False
    return handed_on(record, operation, manager.host)


def request_time(record, operation):
    """When the request behind the task_state was recorded.

    Without a matching action the API died between setting the state and
    recording the request, so the instance's last update dates it.
    """
    target = record.latest(operation.actions)
    if target is not None and target.start_time is not None:
        return target.start_time
    return record.updated_at


def remember(manager, record):
    """Keep the record read for the gates' notes after the recovery."""
    state.of(manager).evidence[record.uuid] = record


def methods_for(task_state):
    if task_state in API_SET:
        return API_SET[task_state].methods
    return REACHED.get(task_state, ())
