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
instance. The sweep watches exactly those instances: once a request is
older than ``[recover] queued_request_grace`` and still shows no compute
event on this host, it runs the start-up recovery on the instance, as if
the request had reached this host and died. Evidence that cannot be
read (the conductor is down...) keeps the instance waiting: unknown is
never "started".

It starts on the first instance that start-up leaves alone, never blocks
start-up, makes its first pass ``[recover] sweep_interval`` seconds later
and stops when nothing is left to watch or when the service stops (nova's
cleanup_host closes the manager's instance events). Each change is a
compare-and-swap on the task_state, so a request that arrives meanwhile
wins.
"""

import threading

from oslo_log import log as logging
from oslo_utils import timeutils

import nova.conf
from nova import context as nova_context
from nova import exception
from nova import objects

from nova_recover import conf as recover_conf
from nova_recover.recovery import base
from nova_recover.recovery import evidence

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF
recover_conf.register_opts(CONF)

_SWEEP = '_nova_recover_sweep'
EXPECTED_ATTRS = ['info_cache', 'metadata', 'system_metadata',
                  'numa_topology', 'flavor']

# What one pass did with a watched instance.
WAITING = 'waiting'
ARRIVED = 'arrived'
SETTLED = 'settled'
RECOVERED = 'recovered'


class Sweep(object):

    def __init__(self, manager):
        self.manager = manager
        # uuid -> (task_state start-up saw, how to recover it if lost)
        self.pending = {}
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self.halted = False
        self.thread = None

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


def watch(manager, instance, recover):
    """Keep an eye on an instance that start-up left for its request.

    :param recover: ``recover(manager, context, instance)``, called once
        the request is taken as lost (the engine's recover_lost).
    """
    sweep = getattr(manager, _SWEEP, None)
    if sweep is None:
        sweep = Sweep(manager)
        setattr(manager, _SWEEP, sweep)
    sweep.add(instance, recover)


def stop(manager):
    """End the manager's sweep now (tests; nova's stop is noticed too)."""
    sweep = getattr(manager, _SWEEP, None)
    if sweep is None:
        return
    sweep.halted = True
    sweep.wakeup.set()
    thread = sweep.thread
    if thread is not None:
        thread.join(5)


def watched(manager):
    sweep = getattr(manager, _SWEEP, None)
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
    sweep = getattr(manager, _SWEEP, None)
    if sweep is None:
        return {}
    with sweep.lock:
        pending = dict(sweep.pending)
    if not pending:
        return {}
    context = context or nova_context.get_admin_context()
    grace = CONF.recover.queued_request_grace
    outcomes = {}
    for uuid, (task_state, recover) in pending.items():
        if stopped(manager):
            break
        try:
            outcome = _sweep_instance(manager, context, uuid, task_state,
                                      recover, grace)
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


def _sweep_instance(manager, context, uuid, task_state, recover, grace):
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
    record = evidence.load(context, instance, operation.actions)
    if evidence.reached(record, operation, manager.host):
        # The request reached this running service: it is its job now.
        return ARRIVED
    requested = evidence.request_time(record, operation)
    if requested is not None and timeutils.delta_seconds(
            timeutils.normalize_time(requested), timeutils.utcnow()) < grace:
        return WAITING
    LOG.warning('The %(op)s request recorded at %(when)s never reached this '
                'host; recovering the instance as if it had died here',
                {'op': base.operation_of(instance), 'when': requested},
                instance=instance)
    evidence.remember(manager, record)
    recover(manager, context, instance)
    return RECOVERED


def _get_instance(context, uuid):
    return objects.Instance.get_by_uuid(context, uuid,
                                        expected_attrs=EXPECTED_ATTRS)
