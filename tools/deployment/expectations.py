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
"""The exact end of every operation of every group, on compute-a (ours).

One table per group, keyed by operation, each entry an Expect: what an
owner must see once the restarted compute has settled, field by field.
The judge (scenarios.judge) compares every field and fails on any
difference; ERROR passes only where the entry says ``error``. The same
entry is printed beside stock's (compute-b's) end as an observation,
never as a failure.

Fields, as the public APIs and the fake hypervisor show them:

vm_state
    ``OS-EXT-STS:vm_state``; ``deleted`` when the server is gone.
task
    ``OS-EXT-STS:task_state``, ``-`` for none.
host
    ``OS-EXT-SRV-ATTR:host``: ``here`` (the operation's compute),
    ``other`` (the other compute) or ``-`` (none: offloaded, deleted).
flavor
    The flavor's name (``tiny``; ``small`` is the resize flavor).
power
    ``OS-EXT-STS:power_state`` by name (running, paused, shutdown,
    suspended, nostate, crashed).
guest
    What the fake driver's persistent store (``<state_path>/
    fake-guests.json`` of each compute) holds for the server:
    ``here:<state>`` and/or ``other:<state>``, ``-`` for no guest at all.
images
    Only for operations that make or keep an image (Op.image): the
    statuses of the glance images of that name, sorted, ``-`` for none.
    Glance does not list deleted images, so an image the recovery
    deleted reads ``-``; none may be left ``queued`` or ``saving``.
events
    The compute events of the request's own action (the newest action
    of the operation that a user made; a start-up re-run records an
    action of its own, with no user), sorted, as ``<method>=<result>``
    without the ``compute_`` prefix, where result is Success, Error or
    open; an Error event's details add ``:interrupted`` (evidence.py's
    "Interrupted by a nova-compute restart"), ``:lost`` (the lost
    request's note) or ``:other``. ``request_lost`` is the event that
    says a request was lost.
reruns
    How many actions with no user (start-up re-runs) were recorded on
    the server after the request's action.
fault
    The server's fault message, ``-`` for none.
files
    libvirt only (libvirt_expectations.py): what nova left in each host's
    instances directory for the server (``<uuid>_resize``,
    ``unrescue.xml``, ``*.rescue``), ``-`` for nothing.

A value that is a frozenset accepts any of its members; that is only
used where the harness cannot make the end deterministic, and each use
says why.

What the expectations follow (see nova_recover/startup_recovery/rules and
nova_recover/startup_recovery): a request that died on its host is recovered by
its rule, and ends ERROR only where the guest or its data are gone or
cannot be reconciled safely; a request still queued is honoured when the
RPC server consumes it (its events Success); a lost request leaves the
server as it was before it, with an Error ``request_lost`` event, and
nothing of it behind (no image left queued).
"""

import collections

FIELDS = ('vm_state', 'task', 'host', 'flavor', 'power', 'guest', 'images',
          'events', 'reruns', 'fault', 'files')

Expect = collections.namedtuple('Expect', FIELDS)
# images None: the operation makes no image, so it is not looked at.
_DEFAULT = dict(vm_state='active', task='-', host='here', flavor='tiny',
                power='running', guest='here:running', images=None,
                events='', reruns=0, fault='-', files=None)


def E(**fields):
    """An Expect: an ACTIVE running server on its own host, unless told."""
    values = dict(_DEFAULT)
    unknown = set(fields) - set(values)
    if unknown:
        raise TypeError('unknown fields %s' % sorted(unknown))
    values.update(fields)
    return Expect(**values)


def ev(*events):
    return ','.join(sorted(events))


# Frequent ends.
STOPPED = dict(vm_state='stopped', power='shutdown', guest='here:shutdown')
PAUSED = dict(vm_state='paused', power='paused', guest='here:paused')
SUSPENDED = dict(vm_state='suspended', power='suspended',
                 guest='here:suspended')
# nova's offload records the power state the guest had before it was
# destroyed.
OFFLOADED = dict(vm_state='shelved_offloaded', host='-', power='shutdown',
                 guest='-')
GONE = dict(vm_state='deleted', host='-', flavor='-', power='-', guest='-')

INTERRUPTED = ':interrupted'
LOST = 'request_lost=Error:lost'


def died(method, **fields):
    """The request died in its driver call: its event closed interrupted."""
    return E(events=fields.pop('events', method + '=Error' + INTERRUPTED),
             **fields)


def honoured(method, **fields):
    """The request ran when the RPC server consumed it."""
    return E(events=fields.pop('events', method + '=Success'), **fields)


def lost(**fields):
    """The request never arrived: the server as before, a lost event."""
    return E(events=fields.pop('events', LOST), **fields)


# Died: every operation parked inside its driver call, SIGKILL, one
# restart. The crash point runs before the driver method, so the guest is
# as the operation left it before that call (the Op's state where given).
DIED = {
    # The upload never finished: its image is deleted. nova 34 closes the
    # snapshot's event Success when its background task starts, so
    # start-up adds an Error event that tells the owner it did not end.
    'snapshot': E(images='-', events=ev(
        'snapshot_instance=Success',
        'snapshot_interrupted=Error' + INTERRUPTED)),
    'backup': died('backup_instance', images='-'),
    # REBOOT_STARTED and the guest runs: the reboot happened, recorded.
    'reboot-soft': died('reboot_instance'),
    # REBOOT_STARTED_HARD and the guest is off: hard reboot re-run.
    'reboot-hard': died('reboot_instance', reruns=1),
    # The guest still ran: the stop is re-run (clean shutdown).
    'stop': died('stop_instance', reruns=1, **STOPPED),
    'start': died('start_instance', reruns=1),
    'pause': died('pause_instance', reruns=1, **PAUSED),
    'unpause': died('unpause_instance', reruns=1),
    'suspend': died('suspend_instance', reruns=1, **SUSPENDED),
    'resume': died('resume_instance', reruns=1),
    # Never assumed done: driver.unrescue puts the original disk back.
    'rescue': died('rescue_instance'),
    'unrescue': died('unrescue_instance'),
    # Parked in spawn after the rebuild destroyed the guest: the guest is
    # gone, nothing to resume from; ERROR is the rule's end.
    'rebuild': died('rebuild_instance', vm_state='error', power='nostate',
                    guest='-',
                    fault='rebuild interrupted by nova-compute restart'),
    # shelve powered the guest off, its upload died: rolled back to what
    # the guest shows, the half image deleted.
    'shelve': died('shelve_instance', images='-', **STOPPED),
    # The shelved image is active: the offload is finished.
    'shelve-offload': died('shelve_offload_instance', images='active',
                           **OFFLOADED),
    # Died before the guest ran: shelved offloaded again, image kept;
    # the rule records the power state of no guest (nostate).
    'unshelve': died('unshelve_instance', images='active',
                     **dict(OFFLOADED, power='nostate')),
    # Reverted on the source (here), old flavor, old guest running.
    'resize': E(events=ev('prep_resize=Success',
                          'resize_instance=Error' + INTERRUPTED)),
    # Here is the destination: the revert is handed to the source (other)
    # by a re-run revert_resize, which destroys the new guest here.
    'resize-revert': died('revert_resize', host='other',
                          guest='other:running', reruns=1),
    # Reset: the guest runs here, the migration is in error. nova 34
    # closes live_migration's event Success when its task starts; the
    # reset's own live_migration_abort records an event too.
    'live-migration': E(events=ev(
        'check_can_live_migrate_destination=Success',
        'check_can_live_migrate_source=Success',
        'live_migration=Success', 'live_migration_abort=Success',
        'pre_live_migration=Success')),
    'delete': died('terminate_instance', **GONE),
    'change-password': died('set_admin_password'),
}

# Queued: every request sent while both computes are down, honoured once
# they consume their queues.
QUEUED = {
    'snapshot': honoured('snapshot_instance', images='active'),
    'backup': honoured('backup_instance', images='active'),
    'reboot-soft': honoured('reboot_instance'),
    'reboot-hard': honoured('reboot_instance'),
    'stop': honoured('stop_instance', **STOPPED),
    'start': honoured('start_instance'),
    'pause': honoured('pause_instance', **PAUSED),
    'unpause': honoured('unpause_instance'),
    'suspend': honoured('suspend_instance', **SUSPENDED),
    'resume': honoured('resume_instance'),
    'rescue': honoured('rescue_instance', vm_state='rescued'),
    'unrescue': honoured('unrescue_instance'),
    'rebuild': honoured('rebuild_instance'),
    'shelve': honoured('shelve_instance', images='active',
                       vm_state='shelved', power='shutdown',
                       guest='here:shutdown'),
    'shelve-offload': honoured('shelve_offload_instance', images='active',
                               **OFFLOADED),
    # nova deletes the shelved image once the server runs again.
    'unshelve': honoured('unshelve_instance', images='-'),
    # To the other host, waiting for the confirm; the old guest stays
    # here, off.
    'resize': E(vm_state='resized', host='other', flavor='small',
                guest='here:shutdown other:running',
                events=ev('prep_resize=Success', 'resize_instance=Success',
                          'finish_resize=Success')),
    # Back on the source (other), old flavor; the new guest here is gone.
    'resize-revert': E(host='other', guest='other:running',
                       events=ev('revert_resize=Success',
                                 'finish_revert_resize=Success')),
    'delete': honoured('terminate_instance', **GONE),
}

# Lost: the requests' casts are gone with a RabbitMQ restart. Each server
# is left as it was before its request, with a request_lost event, once
# compute-a has served for the grace.
LOST_ENDS = {
    # createImage, createBackup and shelve create their image in the API,
    # before the cast: nothing may be left queued for a request that
    # never ran.
    'snapshot': lost(images='-'),
    'backup': lost(images='-'),
    'reboot-soft': lost(),
    'reboot-hard': lost(),
    'stop': lost(),
    'start': lost(**STOPPED),
    'pause': lost(),
    'unpause': lost(**PAUSED),
    'suspend': lost(),
    'resume': lost(**SUSPENDED),
    'rescue': lost(),
    'unrescue': lost(vm_state='rescued'),
    'rebuild': lost(),
    'shelve': lost(images='-'),
    'shelve-offload': lost(vm_state='shelved', power='shutdown',
                           guest='here:shutdown', images='active'),
    # prep_resize, cast to the other host, is what was lost; this host
    # only ever held RESIZE_PREP.
    'resize': lost(),
    'resize-revert': lost(vm_state='resized', flavor='small',
                          guest='here:running other:shutdown'),
    # A delete is one that start-up always finishes (the deleting rule):
    # the user asked for it, and nothing of it ran, so no event.
    'delete': E(events='', **GONE),
}

# Died during recovery: the first start-up is itself SIGKILLed at its
# first driver call of a recovery; the end is that of one clean
# recovery. Which re-run the first start-up died in depends on the order
# start-up met the servers, so a re-running operation shows one re-run,
# or two where the first was the one killed.
_AGAIN = frozenset([1, 2])
RECOVERY = dict(
    (name, DIED[name]._replace(reruns=_AGAIN) if DIED[name].reruns
     else DIED[name])
    for name in ('snapshot', 'reboot-hard', 'stop', 'start',
                 'shelve-offload', 'delete'))

# Outage: requests queued through an outage longer than the grace and a
# start-up slow to reach its RPC server; every one honoured, as Queued.
OUTAGE = dict((name, QUEUED[name]) for name in (
    'snapshot', 'reboot-soft', 'reboot-hard', 'stop', 'start', 'pause'))

TABLES = {
    'died': DIED,
    'queued': QUEUED,
    'lost': LOST_ENDS,
    'recovery': RECOVERY,
    'outage': OUTAGE,
}


def tables(hypervisor):
    """The groups' tables on this hypervisor."""
    if hypervisor == 'libvirt':
        import libvirt_expectations
        return libvirt_expectations.TABLES
    return TABLES


def matches(want, got):
    if isinstance(want, frozenset):
        return got in want
    return want == got


def show(value):
    if isinstance(value, frozenset):
        return '|'.join(str(v) for v in sorted(value))
    if value == '':
        return '-'
    return str(value)


def differences(expect, actual):
    """[(field, expected, actual)] for every field that differs."""
    out = []
    for name in FIELDS:
        want = getattr(expect, name)
        if want is None:
            continue
        got = actual.get(name)
        if not matches(want, got):
            out.append((name, show(want), show(got)))
    return out
