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

"""Whether a server with a task_state is stuck, from compute API payloads.

Everything here is pure: it takes the dicts that nova 34's API returns
(``GET /servers/detail``, ``GET /servers/{id}/os-instance-actions`` and
``.../os-instance-actions/{request_id}`` at microversion 2.62 or later,
``GET /os-services``) and the current time, and does no I/O.

The evidence is the one start-up recovery reads from the database: the
API records an instance action before it casts, and nova-compute records
a ``compute_<method>`` event with its host as soon as the method starts.
The API cannot show when a nova-compute process started, so "the process
that ran the operation is gone" is read from two things it does show:
the service's ``state`` (``down`` once it missed its reports for
``service_down_time``, or when forced down), and time. The rule:

- no compute host: *in progress* while anything changed within the
  grace, then *lost* (no start-up ever sees such a server);
- the request reached the host (an event of the operation on that host,
  on the latest matching action or a later one; or a state that only
  nova-compute writes):

  - service down: *died on host*;
  - service up, and the server, the request or the event changed within
    the grace: *in progress*; the event's finish time counts as a change,
    since several methods (snapshot upload, live migration) finish their
    event and go on in a thread;
  - service up and nothing changed for longer than the grace: *died on
    host* when the newest event finished with ``Error`` (the operation is
    over and nothing clears the state), otherwise *stalled on host*: the
    operation hangs, or the service restarted without nova-recover. A
    long image upload can look stalled; give it a larger ``--grace``;

- the request did not reach the host (no such event):

  - service down: *queued for host*, the request waits on its queue;
  - service up and the request younger than the grace: *in progress*;
  - service up and the request older than the grace: *lost*. The
    deferred sweep of nova-recover decides so only once the restarted
    service has also consumed its queue for the grace, so it may take
    up to one grace longer than the audit.

Only *in progress* is not stuck.
"""

import collections
import datetime

from oslo_utils import timeutils

from nova_recover.startup_recovery import registry

PREFIX = 'compute_'

# [recover] queued_request_grace's default (nova_recover/conf.py).
DEFAULT_GRACE = 600

# The details that nova-recover writes on an event it closes at start-up
# (nova_recover evidence.INTERRUPTED); shown from microversion 2.84.
INTERRUPTED = 'Interrupted by a nova-compute restart'

IN_PROGRESS = 'in progress'
DIED = 'died'
STALLED = 'stalled'
QUEUED = 'queued'
LOST = 'lost'
STUCK = frozenset([DIED, STALLED, QUEUED, LOST])

# nova.compute.power_state, named as openstackclient shows them.
POWER_STATES = {
    0: 'NOSTATE',
    1: 'Running',
    3: 'Paused',
    4: 'Shutdown',
    6: 'Crashed',
    7: 'Suspended',
}

Operation = collections.namedtuple(
    'Operation', ['actions', 'methods', 'api', 'checked'])


# task_state -> the instance actions its request records, the compute
# manager methods whose event shows that it reached a host, whether it is
# saved before a cast (the request may be queued) and whether start-up
# asks for that event before it recovers. Derived from the recovery's own
# registry, which is plain data: the audit does not import nova. The
# actions of compute-set rows name the request that led to the state:
# events are only read from that action and the later ones.
OPERATIONS = {
    state.name: Operation(state.actions, state.methods,
                          state.saved_before_cast, state.checked)
    for state in registry.TASK_STATES if state.set_by
}


class AuditError(Exception):
    """The API did not show what the verdict needs."""


Verdict = collections.namedtuple('Verdict', [
    'server', 'name', 'project', 'host', 'task_state', 'vm_state',
    'power_state', 'age', 'verdict', 'verdict_host', 'reason',
    'next_startup', 'request', 'event'])


def is_stuck(verdict):
    return verdict.verdict in STUCK


def describe(verdict):
    """The verdict as the table shows it, e.g. 'died on cmp1'."""
    if verdict.verdict_host is None:
        return verdict.verdict
    word = 'for' if verdict.verdict == QUEUED else 'on'
    return '%s %s %s' % (verdict.verdict, word, verdict.verdict_host)


def parse_time(value):
    """A naive UTC datetime from any of nova's timestamp formats.

    Servers show ``2026-12-01T08:00:00Z``; actions, events and services
    ``2026-12-01T08:00:00.000000`` (UTC, without a zone).
    """
    if value is None or value == '':
        return None
    if isinstance(value, datetime.datetime):
        return timeutils.normalize_time(value)
    return timeutils.normalize_time(timeutils.parse_isotime(value))


def _seconds(later, earlier):
    return int((later - earlier).total_seconds())


def request_action(task_state, actions):
    """The newest action that requested task_state, or None.

    actions are newest first, as nova lists them (created_at, id
    descending).
    """
    operation = OPERATIONS.get(task_state)
    if operation is None:
        return None
    for action in actions:
        if action.get('action') in operation.actions:
            return action
    return None


def actions_to_show(server, actions):
    """The request ids whose events the verdict reads.

    The request's action and every later one: a recovery re-run attaches
    its event to the instance's newest action, whatever its name.
    """
    request = request_action(server.get('OS-EXT-STS:task_state'), actions)
    if request is None:
        return []
    wanted = []
    for action in actions:
        wanted.append(action['request_id'])
        if action is request:
            break
    return wanted


def _events(actions, request, names):
    """(event, action) pairs of the operation, newest event first."""
    found = []
    for action in actions:
        for event in action.get('events') or ():
            if event.get('event') in names:
                if 'host' not in event:
                    raise AuditError(
                        'instance action events show no host: the audit '
                        'needs compute API microversion 2.62 or later and '
                        'an admin role (os_compute_api:os-instance-actions:'
                        'events)')
                found.append((event, action))
        if action is request:
            break
    found.sort(key=lambda pair: parse_time(pair[0].get('start_time')) or
               datetime.datetime.min, reverse=True)
    return found


def service_for(host, services):
    """The nova-compute service record of host, or None."""
    found = None
    for service in services:
        if (service.get('binary') == 'nova-compute' and
                service.get('host') == host):
            if found is None or service.get('state') == 'up':
                found = service
    return found


def is_alive(service):
    return (service is not None and service.get('state') == 'up' and
            not service.get('forced_down'))


def _service_text(host, service):
    if service is None:
        return 'no nova-compute service is registered on %s' % host
    if service.get('forced_down'):
        return 'nova-compute on %s is forced down' % host
    return 'nova-compute on %s is %s (last report %s)' % (
        host, service.get('state'), service.get('updated_at') or 'never')


def _event_text(event):
    if event.get('finish_time') is None:
        return '%s started on %s at %s and never finished' % (
            event['event'], event['host'], event.get('start_time'))
    text = '%s on %s finished with %s at %s' % (
        event['event'], event['host'], event.get('result'),
        event['finish_time'])
    if event.get('details') == INTERRUPTED:
        text += ' (closed by a nova-recover start-up)'
    return text


def next_startup(task_state, vm_state, host, reached, outcomes):
    """What nova-recover does to the server at its host's next start-up.

    outcomes maps task_state -> (rule name, where the instance ends), as
    load_outcomes() reads it from nova_recover's coverage table. For a
    server still in progress, it is what a restart now would do.
    """
    if not host:
        return 'none: no compute host, so no start-up sees it'
    rule, end = (outcomes or {}).get(task_state, (None, None))
    if rule:
        recovery = '%s rule: %s' % (rule, end)
    elif end:
        recovery = end
    else:
        recovery = 'recovered as interrupted (see the coverage table)'
    operation = OPERATIONS.get(task_state)
    checked = (operation is not None and operation.checked and
               vm_state != 'building')
    if checked and not reached:
        return 'wait for the request; after the grace, %s' % recovery
    return recovery


def judge(server, actions, services, now, grace=DEFAULT_GRACE,
          outcomes=None):
    """The Verdict on one server that has a task_state.

    server: one entry of ``GET /servers/detail``. actions: its instance
    actions newest first, where those that actions_to_show() names carry
    the ``events`` of ``GET .../os-instance-actions/{request_id}``.
    services: ``GET /os-services`` entries. now: the current time (naive
    UTC or aware). grace: seconds, as ``[recover] queued_request_grace``.
    """
    now = parse_time(now)
    task_state = server.get('OS-EXT-STS:task_state')
    vm_state = server.get('OS-EXT-STS:vm_state')
    host = server.get('OS-EXT-SRV-ATTR:host')
    updated = parse_time(server.get('updated'))
    age = _seconds(now, updated)
    operation = OPERATIONS.get(task_state)

    request = request_action(task_state, actions)
    methods = operation.methods if operation else ()
    events = _events(actions, request, {PREFIX + m for m in methods})
    here = [event for event, _action in events if event['host'] == host]
    event = here[0] if here else None
    elsewhere = sorted({e['host'] for e, _a in events if e['host'] != host})

    times = [updated]
    if request is not None:
        times.append(parse_time(request.get('start_time')))
    if event is not None:
        times.append(parse_time(event.get('start_time')))
        times.append(parse_time(event.get('finish_time')))
    idle = _seconds(now, max(t for t in times if t is not None))
    requested = (parse_time(request.get('start_time'))
                 if request is not None else updated)
    waited = _seconds(now, requested)

    api_set = operation is not None and operation.api
    # A state that only nova-compute writes proves that the request got
    # there; so does one missing from OPERATIONS, for want of anything
    # better to read.
    reached = event is not None or not api_set
    service = service_for(host, services) if host else None
    alive = is_alive(service)

    notes = []
    if request is not None:
        notes.append('request %s (%s) at %s' % (
            request.get('action'), request.get('request_id'),
            request.get('start_time')))
    elif api_set:
        notes.append('no %s action recorded' % ' or '.join(
            operation.actions))
    if event is not None:
        notes.append(_event_text(event))
    if elsewhere:
        notes.append('events of the operation on %s' % ', '.join(elsewhere))

    verdict_host = host
    if not host:
        verdict_host = None
        notes.insert(0, 'on no compute host')
        verdict = IN_PROGRESS if idle <= grace else LOST
        if verdict == LOST:
            notes.append('nothing changed for %ds' % idle)
    elif reached:
        notes.append(_service_text(host, service))
        if not alive:
            verdict = DIED
        elif idle <= grace:
            verdict = IN_PROGRESS
        else:
            notes.append('nothing changed for %ds' % idle)
            if (event is not None and event.get('finish_time') and
                    event.get('result') == 'Error'):
                verdict = DIED
            else:
                verdict = STALLED
    else:
        notes.append(_service_text(host, service))
        if not alive:
            verdict = QUEUED
        elif waited <= grace:
            verdict = IN_PROGRESS
        else:
            notes.append('no compute event %ds after the request' % waited)
            verdict = LOST
            verdict_host = None

    power = server.get('OS-EXT-STS:power_state')
    return Verdict(
        server=server.get('id'),
        name=server.get('name'),
        project=server.get('tenant_id'),
        host=host,
        task_state=task_state,
        vm_state=vm_state,
        power_state=POWER_STATES.get(power, power),
        age=age,
        verdict=verdict,
        verdict_host=verdict_host,
        reason='; '.join(notes),
        next_startup=next_startup(task_state, vm_state, host, reached,
                                  outcomes),
        request=request.get('request_id') if request is not None else None,
        event=event.get('event') if event is not None else None)


def load_outcomes():
    """task_state -> (rule name, end) from nova_recover's coverage table.

    The only place the audit touches the recovery code, and lazily: that
    imports nova's compute manager, which costs a second or two, and may
    be absent or mid-reorganisation. Without it the audit still gives its
    verdicts, with a generic next start-up action.
    """
    import importlib
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            coverage = importlib.import_module('nova_recover.coverage')
            found = {}
            for state in coverage.installed_task_states():
                rule = coverage.owner(state)
                name = coverage.rule_name(rule) if rule is not None else None
                found[state] = (name, coverage.recovery_end(state))
            return found
    except Exception:
        return {}
