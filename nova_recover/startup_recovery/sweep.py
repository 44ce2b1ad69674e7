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

"""Recover, later, what start-up left for a request that never comes.

Start-up leaves an instance alone when its request may still be queued
(see evidence.py). If the message was lost instead (the API died after
its cast, the queue was purged...), nothing would ever settle the
instance. The sweep watches exactly those instances and, once a request
is lost, leaves its instance as it was before the request, with a note
on the request's action (lost_request.recover_lost): no rule runs, since
nothing of the request ever ran here. Only the image that the API
created for a lost snapshot, backup or shelve goes (take_as_lost): it is
empty, and nothing will ever fill it.

A request is lost only when this service has been consuming its queue
for ``[recover] queued_request_grace`` seconds and the request still
shows no compute event on this host. Nova starts the RPC server only
after init_host and pre_start_hook, and a queued request may have been
cast long before (the outage of a maintenance reboot can be longer than
the grace), so the request's own age says nothing about how long it has
been deliverable. The wait is measured on this host's monotonic clock
from ``serving()``, which the overlay calls from the manager's
post_start_hook, right after nova started the RPC server(s); until then
every watched instance is waiting, whatever its age: unknown is never
"started", and a queue not yet read is no proof of loss.

The request's own age still counts, as a second condition: a request
cannot have waited on the queue longer than it has existed, so one
recorded after the service started serving (the instance went through
another request and back into the same task_state) is given its full
grace too. For a request recorded before serving, which is every
request start-up saw, the serving wait is the shorter one and decides.

Evidence that cannot be read (the conductor is down...) keeps the
instance waiting. Evidence that can never be read, because the request
lies further back in the instance's actions than evidence.py reads
(evidence.TooFarBack), would keep it waiting forever: once the service
has served for the grace, such an instance is recovered as lost, with a
warning.

It starts on the first instance that start-up leaves alone, never blocks
start-up, makes a pass every ``[recover] sweep_interval`` seconds (and
one when serving starts) and stops when nothing is left to watch or when
the service stops (nova's cleanup_host closes the manager's instance
events). Each change is a compare-and-swap on the task_state, so a
request that arrives meanwhile wins.
"""

import threading
import time

from oslo_log import log as logging
from oslo_utils import timeutils

from nova.compute import task_states
import nova.conf
from nova import context as nova_context
from nova import exception
from nova import objects

from . import base
from . import evidence
from . import glance_cleanup
from . import state

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF

EXPECTED_ATTRS = ['info_cache', 'metadata', 'system_metadata',
                  'numa_topology', 'flavor']

# What one pass did with a watched instance.
WAITING = 'waiting'
ARRIVED = 'arrived'
SETTLED = 'settled'
RECOVERED = 'recovered'

# This host's monotonic clock: the serving wait must not jump with NTP.
_clock = time.monotonic


class Sweep(object):

    def __init__(self, manager):
        self.manager = manager
        # uuid -> (task_state start-up saw, how to recover it if lost)
        self.pending = {}
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self.halted = False
        self.thread = None
        # _clock() when nova started the RPC server(s), or None before.
        self.serving_started = None

    def add(self, instance, recover):
        with self.lock:
            self.pending[instance.uuid] = (instance.task_state, recover)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._loop, name='nova-recover-sweep',
                    daemon=True)
                self.thread.start()

    def _loop(self):
        while True:
            self.wakeup.wait(CONF.recover.sweep_interval)
            self.wakeup.clear()
            if self.halted or stopped(self.manager):
                LOG.debug('nova-compute stopped; ending the recovery sweep')
                return
            try:
                sweep_once(self.manager)
            except Exception:
                LOG.exception('The recovery sweep failed; retrying later')
            with self.lock:
                if not self.pending:
                    self.thread = None
                    return


def _state(manager):
    """The manager's Sweep, made by the first watch or serving call."""
    recovery = state.of(manager)
    if recovery.sweep is None:
        recovery.sweep = Sweep(manager)
    return recovery.sweep


def watch(manager, instance, recover):
    """Keep an eye on an instance that start-up left for its request.

    :param recover: ``recover(manager, context, instance)``, called once
        the request is taken as lost (lost_request.recover_lost).
    """
    _state(manager).add(instance, recover)


def serving(manager):
    """Note that the service now consumes its queue, and wake the sweep.

    Called once nova started the manager's RPC server(s) (the overlay's
    post_start_hook). No request is taken as lost before this call, and
    the grace is counted from it. A second call (the RPC server started
    again) counts from the later one: the queue was not read in between.
    """
    sweep = _state(manager)
    with sweep.lock:
        sweep.serving_started = _clock()
        running = sweep.thread is not None and sweep.thread.is_alive()
    if running:
        # A pass now drops what settled or arrived during start-up and
        # starts the interval afresh; nothing can be lost yet.
        sweep.wakeup.set()


def served(manager):
    """Seconds this service has consumed its queue, or None if not yet."""
    sweep = state.of(manager).sweep
    started = None if sweep is None else sweep.serving_started
    if started is None:
        return None
    return _clock() - started


def stop(manager):
    """End the manager's sweep now (tests; nova's stop is noticed too)."""
    sweep = state.of(manager).sweep
    if sweep is None:
        return
    sweep.halted = True
    sweep.wakeup.set()
    thread = sweep.thread
    if thread is not None:
        thread.join(5)


def watched(manager):
    sweep = state.of(manager).sweep
    if sweep is None:
        return {}
    with sweep.lock:
        return {uuid: task_state
                for uuid, (task_state, _recover) in sweep.pending.items()}


def stopped(manager):
    """Whether the service stopped: cleanup_host cancels all events."""
    events = getattr(manager, 'instance_events', None)
    return events is None or getattr(events, '_events', {}) is None


def sweep_once(manager, context=None):
    """One pass over the watched instances; returns {uuid: outcome}."""
    sweep = state.of(manager).sweep
    if sweep is None:
        return {}
    with sweep.lock:
        pending = dict(sweep.pending)
    if not pending:
        return {}
    if sweep.serving_started is None:
        # The queue has not been read yet: nothing can be lost, and
        # nothing is worth a round trip before it is.
        return {uuid: WAITING for uuid in pending}
    context = context or nova_context.get_admin_context()
    grace = CONF.recover.queued_request_grace
    outcomes = {}
    for uuid, (task_state, recover) in pending.items():
        if stopped(manager):
            break
        try:
            outcome = _sweep_instance(manager, context, uuid, task_state,
                                      recover, grace, served(manager))
        except Exception as exc:
            # Unknown is never "started": ask again on the next pass.
            LOG.warning('Could not check the request of instance %(uuid)s '
                        '(%(error)s); asking again later',
                        {'uuid': uuid, 'error': exc})
            outcome = WAITING
        outcomes[uuid] = outcome
        if outcome != WAITING:
            with sweep.lock:
                sweep.pending.pop(uuid, None)
    return outcomes


def _sweep_instance(manager, context, uuid, task_state, recover, grace,
                    serving_for):
    try:
        instance = _get_instance(context, uuid)
    except exception.InstanceNotFound:
        return SETTLED
    if instance.host != manager.host or instance.task_state != task_state:
        # Something settled it, or it moved on to another request.
        return SETTLED
    operation = evidence.API_SET.get(task_state)
    if operation is None:
        return SETTLED
    try:
        record = evidence.load(context, instance, operation.actions)
    except evidence.TooFarBack as exc:
        # Unreadable for good: waiting longer cannot tell more.
        if not _lost(serving_for, exc.requested, grace):
            return WAITING
        LOG.warning('The %(op)s request lies too far back among the '
                    'instance actions to tell whether it reached this '
                    'host (%(error)s), and this service has consumed its '
                    'queue for %(served)d seconds; taking it as lost',
                    {'op': base.operation_of(instance), 'error': exc,
                     'served': serving_for}, instance=instance)
        take_as_lost(manager, context, instance, recover)
        return RECOVERED
    if evidence.arrived(record, operation, manager.host):
        # The request reached this running service, or went on to its
        # next step: it is their job now.
        return ARRIVED
    requested = evidence.request_time(record, operation)
    if not _lost(serving_for, requested, grace):
        return WAITING
    LOG.warning('The %(op)s request recorded at %(when)s never reached this '
                'host in the %(served)d seconds it has consumed its queue; '
                'taking it as lost',
                {'op': base.operation_of(instance), 'when': requested,
                 'served': serving_for}, instance=instance)
    evidence.remember(manager, record)
    take_as_lost(manager, context, instance, recover)
    return RECOVERED


# The requests for which the API created an image before its cast.
_MAKES_IMAGE = frozenset([task_states.IMAGE_SNAPSHOT_PENDING,
                          task_states.IMAGE_BACKUP, task_states.SHELVING])


def take_as_lost(manager, context, instance, recover):
    """Undo what the API did for a lost request, then recover it.

    A lost snapshot, backup or shelve leaves the image the API created
    for it queued and empty in the owner's image list (and bill), and no
    upload will ever fill it. It goes first, while the task state still
    keeps a new image request off the instance; then ``recover`` leaves
    the server as it was before the request.
    """
    if instance.task_state in _MAKES_IMAGE:
        glance_cleanup.delete_unfinished_images(manager, context, instance)
    recover(manager, context, instance)


def _lost(serving_for, requested, grace):
    """Whether a request never seen on this host is past its grace.

    Both this service's time consuming the queue and, when known, the
    request's own age must have reached the grace: the request has been
    deliverable for the shorter of the two.
    """
    if serving_for is None or serving_for < grace:
        return False
    if requested is None:
        return True
    age = timeutils.delta_seconds(timeutils.normalize_time(requested),
                                  timeutils.utcnow())
    return age >= grace


def _get_instance(context, uuid):
    return objects.Instance.get_by_uuid(context, uuid,
                                        expected_attrs=EXPECTED_ATTRS)
