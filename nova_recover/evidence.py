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

At start-up an instance can carry a task_state that the API set before
its RPC cast. Either the request reached this host and died with the old
process (recover it), or nova-compute was down when the API cast it and
the request still waits on the queue (leave the instance alone: the
request runs as soon as this service consumes it).

Nova already writes what tells the two apart, so reading it costs no new
write: the API records an InstanceAction for the request before it casts,
and wrap_instance_event records a ``compute_<method>`` InstanceActionEvent,
with this host's name, as soon as the manager method starts. An event of
the operation's method on this host, on the latest action matching the
task_state or on a later one, means the request reached this host.

Why "or a later one": a recovery re-run (stock's or ours) calls the
decorated manager method with an admin context, and nova then attaches
the event to the instance's last action of any kind. Such an event still
proves the operation ran here after the request, so it counts; an event
on an older action of the same name (a previous, finished request) does
not.

Why "exists", not "unfinished": snapshot_instance hands its work to a
thread and its event may finish while the upload runs, and a previous
start-up may already have closed an interrupted event.

No matching action means the API died before it cast, or the request is
still queued: never that it started. The instance is left alone and the
deferred sweep (sweep.py) settles it once the request is older than
``[recover] queued_request_grace``.

Cost: an instance without a task_state, or with a state only nova-compute
sets, is answered without a database statement. The first instance that
needs evidence loads it for every candidate on this host in one
statement, cached on the manager (each start-up builds a new one).
"""

import collections
import contextlib
import threading

from oslo_log import log as logging
from oslo_utils import timeutils
import sqlalchemy as sa

from nova.compute import instance_actions as actions
from nova.compute import task_states
from nova.compute import vm_states
from nova.db.main import api as db_api
from nova.db.main import models

LOG = logging.getLogger(__name__)

Operation = collections.namedtuple('Operation', ['actions', 'methods'])

# task_state set by nova/compute/api.py before it records the action and
# casts -> (instance actions that request records, compute manager methods
# whose wrap_instance_event proves it reached a host). Checked against
# nova 34.0.0; doc/evidence.rst carries the same table with the reasons.
API_SET = {
    task_states.IMAGE_SNAPSHOT_PENDING: Operation(
        (actions.CREATE_IMAGE,), ('snapshot_instance',)),
    task_states.IMAGE_BACKUP: Operation(
        (actions.BACKUP,), ('backup_instance',)),
    task_states.PAUSING: Operation((actions.PAUSE,), ('pause_instance',)),
    task_states.UNPAUSING: Operation(
        (actions.UNPAUSE,), ('unpause_instance',)),
    task_states.SUSPENDING: Operation(
        (actions.SUSPEND,), ('suspend_instance',)),
    task_states.RESUMING: Operation((actions.RESUME,), ('resume_instance',)),
    task_states.POWERING_OFF: Operation((actions.STOP,), ('stop_instance',)),
    task_states.POWERING_ON: Operation((actions.START,), ('start_instance',)),
    task_states.REBOOTING: Operation((actions.REBOOT,), ('reboot_instance',)),
    task_states.REBOOTING_HARD: Operation(
        (actions.REBOOT,), ('reboot_instance',)),
    # An evacuation runs rebuild_instance on the destination, so its event
    # never names this (source) host: the instance is left to it.
    task_states.REBUILDING: Operation(
        (actions.REBUILD, actions.EVACUATE), ('rebuild_instance',)),
    task_states.RESCUING: Operation((actions.RESCUE,), ('rescue_instance',)),
    task_states.UNRESCUING: Operation(
        (actions.UNRESCUE,), ('unrescue_instance',)),
    # The API casts shelve_offload_instance straight away for a
    # volume-backed server, still under SHELVING.
    task_states.SHELVING: Operation(
        (actions.SHELVE,), ('shelve_instance', 'shelve_offload_instance')),
    # The API sets it for shelveOffload; shelve_instance sets it itself
    # when shelved_offload_time is 0, under the shelve action.
    task_states.SHELVING_OFFLOADING: Operation(
        (actions.SHELVE_OFFLOAD, actions.SHELVE),
        ('shelve_offload_instance', 'shelve_instance')),
    task_states.UNSHELVING: Operation(
        (actions.UNSHELVE,), ('unshelve_instance',)),
    # prep_resize runs on the destination, resize_instance on the source
    # (this host, as instance.host is still the source under RESIZE_PREP).
    # Only an event on this host counts, so a resize to another host is
    # ours once its source step started here; a same-host resize shows
    # prep_resize here.
    task_states.RESIZE_PREP: Operation(
        (actions.RESIZE, actions.MIGRATE),
        ('prep_resize', 'resize_instance',
         'prep_snapshot_based_resize_at_dest',
         'prep_snapshot_based_resize_at_source')),
    task_states.RESIZE_REVERTING: Operation(
        (actions.REVERT_RESIZE,),
        ('revert_resize', 'finish_revert_resize',
         'revert_snapshot_based_resize_at_dest',
         'finish_revert_snapshot_based_resize_at_source')),
    task_states.UPDATING_PASSWORD: Operation(
        (actions.CHANGE_PASSWORD,), ('set_admin_password',)),
    # api.soft_delete goes through api._delete, which records 'delete'.
    task_states.SOFT_DELETING: Operation(
        (actions.DELETE,), ('soft_delete_instance',)),
    task_states.RESTORING: Operation(
        (actions.RESTORE,), ('restore_instance',)),
    task_states.MIGRATING: Operation(
        (actions.LIVE_MIGRATION,), ('live_migration',)),
}

# States only nova-compute sets (or, for DELETING, that start-up always
# finishes): reached by definition. The methods name the events that an
# interrupted run left open, so close_interrupted can finish them.
REACHED = {
    task_states.SCHEDULING: ('_do_build_and_run_instance',),
    task_states.BLOCK_DEVICE_MAPPING: ('_do_build_and_run_instance',),
    task_states.NETWORKING: ('_do_build_and_run_instance',),
    task_states.SPAWNING: ('_do_build_and_run_instance',),
    task_states.DELETING: ('terminate_instance',),
    task_states.IMAGE_SNAPSHOT: ('snapshot_instance',),
    task_states.IMAGE_PENDING_UPLOAD: ('snapshot_instance',
                                       'backup_instance'),
    task_states.IMAGE_UPLOADING: ('snapshot_instance', 'backup_instance'),
    task_states.REBOOT_PENDING: ('reboot_instance',),
    task_states.REBOOT_PENDING_HARD: ('reboot_instance',),
    task_states.REBOOT_STARTED: ('reboot_instance',),
    task_states.REBOOT_STARTED_HARD: ('reboot_instance',),
    task_states.REBUILD_BLOCK_DEVICE_MAPPING: ('rebuild_instance',),
    task_states.REBUILD_SPAWNING: ('rebuild_instance',),
    task_states.SHELVING_IMAGE_PENDING_UPLOAD: ('shelve_instance',),
    task_states.SHELVING_IMAGE_UPLOADING: ('shelve_instance',),
    task_states.RESIZE_MIGRATING: ('resize_instance',),
    task_states.RESIZE_MIGRATED: ('resize_instance',),
    task_states.RESIZE_FINISH: ('finish_resize',),
}

PREFIX = 'compute_'
EVENTS = frozenset(
    PREFIX + method
    for methods in ([op.methods for op in API_SET.values()] +
                    list(REACHED.values()))
    for method in methods)
INTERRUPTED = 'Interrupted by a nova-compute restart'

_CACHE = '_nova_recover_evidence'

Event = collections.namedtuple(
    'Event', ['id', 'action_id', 'event', 'host', 'finish_time'])


class Record(object):
    """The actions and operation events of one instance."""

    def __init__(self, uuid, task_state, updated_at):
        self.uuid = uuid
        self.task_state = task_state
        self.updated_at = updated_at
        self.actions = {}  # action id -> (name, start time)
        self.events = []

    def latest(self, names):
        """The id and start of the newest action named in names."""
        found = [(aid, start) for aid, (name, start) in self.actions.items()
                 if name in names]
        return max(found) if found else (None, None)


_forced_lock = threading.Lock()
_forced = set()


@contextlib.contextmanager
def forced(uuid):
    """Take the request of one instance as reached (the sweep's verdict)."""
    with _forced_lock:
        _forced.add(uuid)
    try:
        yield
    finally:
        with _forced_lock:
            _forced.discard(uuid)


def needs_evidence(instance):
    """Whether queued() has to read anything for this instance."""
    return (instance.task_state in API_SET and
            instance.vm_state != vm_states.BUILDING)


def queued(manager, context, instance):
    """Whether the request behind instance.task_state may still be queued.

    True only for a task_state that the API sets before its RPC cast and
    for which nothing shows that the request reached this host: start-up
    then leaves the instance untouched so the queued request can run, and
    the deferred sweep watches it in case the request was lost.
    """
    if not needs_evidence(instance):
        return False
    if instance.uuid in _forced:
        return False
    record = _records(manager, context).get(instance.uuid)
    if reached(record, API_SET[instance.task_state], manager.host):
        return False
    # Imported here: the sweep drives the engine, which imports us.
    from nova_recover import sweep
    sweep.watch(manager, instance)
    return True


def reached(record, operation, host):
    """Whether an event of the operation ran on host after its request."""
    if record is None:
        return False
    latest, _start = record.latest(operation.actions)
    if latest is None:
        return False
    names = {PREFIX + method for method in operation.methods}
    return any(event.action_id >= latest and event.event in names and
               event.host == host for event in record.events)


def request_time(record, operation):
    """When the API recorded the request behind the task_state.

    Without a matching action the API died between setting the state and
    recording the request, so the instance's last update dates it.
    """
    if record is None:
        return None
    _latest, start = record.latest(operation.actions)
    return start or record.updated_at


def _records(manager, context):
    records = getattr(manager, _CACHE, None)
    if records is None:
        records = load(context, manager.host)
        setattr(manager, _CACHE, records)
    return records


def remember(manager, records):
    """Put fresher records (the sweep's) in the manager's cache."""
    cache = getattr(manager, _CACHE, None)
    if cache is None:
        setattr(manager, _CACHE, dict(records))
    else:
        cache.update(records)


@db_api.pick_context_manager_reader
def load(context, host, uuids=None):
    """Actions and operation events of every candidate instance on host.

    One statement: instances on host whose task_state is in API_SET or
    REACHED (or that are building), each with all its actions and the
    events of the operations in the tables.
    """
    inst = models.Instance.__table__
    action = models.InstanceAction.__table__
    event = models.InstanceActionEvent.__table__
    joined = inst.outerjoin(
        action, sa.and_(action.c.instance_uuid == inst.c.uuid,
                        action.c.deleted == 0)
    ).outerjoin(
        event, sa.and_(event.c.action_id == action.c.id,
                       event.c.deleted == 0,
                       event.c.event.in_(sorted(EVENTS))))
    query = sa.select(
        inst.c.uuid, inst.c.task_state, inst.c.updated_at,
        inst.c.created_at, action.c.id, action.c.action, action.c.start_time,
        action.c.created_at, event.c.id, event.c.event, event.c.host,
        event.c.finish_time,
    ).select_from(joined).where(
        inst.c.host == host,
        inst.c.deleted == 0,
        sa.or_(inst.c.task_state.in_(sorted(set(API_SET) | set(REACHED))),
               inst.c.vm_state == vm_states.BUILDING))
    if uuids is not None:
        query = query.where(inst.c.uuid.in_(sorted(uuids)))
    records = {}
    for row in context.session.execute(query):
        (uuid, task_state, updated_at, inst_created, action_id, name,
         start, created, event_id, event_name, event_host, finish) = row
        record = records.get(uuid)
        if record is None:
            record = records[uuid] = Record(uuid, task_state,
                                            updated_at or inst_created)
        if action_id is not None:
            record.actions[action_id] = (name, start or created)
        if event_id is not None:
            record.events.append(Event(event_id, action_id, event_name,
                                       event_host, finish))
    return records


def methods_for(task_state):
    if task_state in API_SET:
        return API_SET[task_state].methods
    return REACHED.get(task_state, ())


def close_interrupted(manager, context, instance, task_state):
    """Finish the events that the dead process left open, as Error.

    Only called for an instance that start-up recovered; the records were
    read with the evidence, so an instance with nothing open costs no
    statement. Returns how many events were closed.
    """
    names = {PREFIX + method for method in methods_for(task_state)}
    if not names:
        return 0
    record = _records(manager, context).get(instance.uuid)
    if record is None:
        return 0
    open_ids = [event.id for event in record.events
                if event.event in names and event.host == manager.host and
                event.finish_time is None]
    if not open_ids:
        return 0
    closed = _close(context, open_ids)
    # Closed now: a second call (the sweep) must not touch them again.
    record.events = [event for event in record.events
                     if event.id not in open_ids]
    LOG.info('Marked %d instance action event(s) as interrupted by the '
             'nova-compute restart', closed, instance=instance)
    return closed


@db_api.pick_context_manager_writer
def _close(context, event_ids):
    event = models.InstanceActionEvent.__table__
    now = timeutils.utcnow()
    closed = 0
    rows = context.session.execute(
        sa.select(event.c.id, event.c.action_id, event.c.event,
                  event.c.finish_time, event.c.result, event.c.traceback,
                  event.c.details).where(event.c.id.in_(event_ids))).all()
    for row in rows:
        if row.finish_time is not None:
            # A recovery re-run of the same method on the same action
            # finished this event: nova finds an event by (action, name)
            # and takes the first. Hand that result to the re-run's own
            # event, still open, so each event tells its own story.
            newer = context.session.execute(
                sa.select(event.c.id).where(
                    event.c.action_id == row.action_id,
                    event.c.event == row.event,
                    event.c.id > row.id,
                    event.c.finish_time.is_(None)).order_by(
                        event.c.id).limit(1)).scalar()
            if newer is None:
                continue
            context.session.execute(
                event.update().where(event.c.id == newer).values(
                    finish_time=row.finish_time, result=row.result,
                    traceback=row.traceback, details=row.details))
        closed += context.session.execute(
            event.update().where(event.c.id == row.id).values(
                finish_time=now, result='Error', traceback=None,
                details=INTERRUPTED)).rowcount
    return closed
