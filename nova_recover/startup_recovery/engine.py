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

"""Run the recovery rules for one instance at nova-compute start-up.

The engine names no rule and no gate: order.py lists them, and the
order they run in, so the engine stays the same whichever are there.
Every instance meets the gates first (order.GATES), which may hold it
back: an instance whose request may still be on the message queue is
left alone (queued.py), so every rule only ever sees an operation that
reached this host and died. A request that turns out lost never reaches
a rule either (lost_request.py). The first rule, in order.RULES, that
owns the instance's state then settles it.

Nothing escapes from here: nova-compute start-up must go on for the
other instances whatever one of them does. A failure of nova's own
start-up step is kept until the end of init_host instead
(raise_start_up_failure).

The blueprint's last change moved _init_instance to native Instance
objects; everything here, and every rule, works on nova.objects.Instance.
"""

import functools

from oslo_log import log as logging

from nova.compute import vm_states
from nova import exception

from . import base
from . import contracts
from . import order
from . import state

LOG = logging.getLogger(__name__)


def rule_for(instance):
    """The first rule, in order.RULES, that owns the instance's state.

    Only rules that list the instance's task_state in STATES, or its
    vm_state in OWNED_VM_STATES, are asked, so a healthy instance costs
    two dictionary look-ups rather than a call to every rule.
    """
    return _rule_for(instance, base.field(instance, 'task_state'),
                     base.field(instance, 'vm_state'))


def _rule_for(instance, task_state, vm_state):
    rules, by_task_state, by_vm_state = _index()
    candidates = by_task_state.get(task_state, ()) + by_vm_state.get(
        vm_state, ())
    if len(candidates) > 1:
        candidates = sorted(candidates, key=rules.index)
    for rule in candidates:
        if rule.owns(instance):
            return rule
    return None


_indexed = (None, {}, {})


def _index():
    """order.RULES by task_state and by vm_state, rebuilt if it changes."""
    global _indexed
    rules = order.RULES
    if _indexed[0] is not rules:
        by_task_state, by_vm_state = {}, {}
        for rule in rules:
            for task_state in rule.STATES:
                by_task_state[task_state] = by_task_state.get(
                    task_state, ()) + (rule,)
            for vm_state in rule.OWNED_VM_STATES:
                by_vm_state[vm_state] = by_vm_state.get(vm_state, ()) + (
                    rule,)
        _indexed = (rules, by_task_state, by_vm_state)
    return _indexed


def init_instance(manager, context, instance, default):
    """Recover the instance, then hand it to nova's own start-up path.

    :param default: nova's original ``_init_instance``, bound to
        ``manager``, called as ``default(context, instance)``.
    """
    if instance.host != manager.host:
        # Nova's own guard logs and skips instances owned elsewhere.
        _run_default(manager, default, context, instance)
        return
    # Read once: start-up runs this for every instance on the host, and
    # checking that a field is loaded costs more than the rest of a
    # healthy instance's bookkeeping.
    task_state = base.field(instance, 'task_state')
    rule = _rule_for(instance, task_state, base.field(instance, 'vm_state'))
    request = _request(manager, context, instance, task_state, rule,
                       default)
    for gate in order.GATES:
        if gate.holds(request):
            return
    if rule is None and task_state is None:
        # Nothing to recover and nothing to report: nova's own path.
        _nova_start_up(manager, default, context, instance)
        return
    outcome = _recover(manager, context, instance, default, task_state,
                       rule)
    recovered(request, outcome)


def _request(manager, context, instance, task_state, rule, default):
    """What the gates are told of an instance of this host."""
    return contracts.GateRequest(
        manager=manager, context=context, instance=instance,
        task_state=task_state, rule=rule,
        nova_path=nova_path_for(manager, default), report=recovered)


def nova_path_for(manager, default):
    """What a gate runs to hand an instance to nova: never raises.

    ``default`` is nova's own _init_instance; its failure is kept for
    the end of init_host, as for any instance (_nova_start_up).
    """
    return functools.partial(_run_default, manager, default)


def recovered(request, outcome):
    """Tell every gate how the recovery of one instance ended."""
    for gate in order.GATES:
        gate.recovered(request, outcome)


def check_options():
    """Refuse wrong [recover] options before init_host touches anything."""
    for gate in order.GATES:
        gate.check_options(order.RULES)


def summarize(manager):
    """Tell the gates that init_host has seen every instance.

    Called at the end of init_host, also when it failed; the caller then
    calls raise_start_up_failure.
    """
    for gate in order.GATES:
        gate.finished(manager)


def _recover(manager, context, instance, default, task_state, rule):
    """Run the rule, then nova's path if the rule asks; say how it ended.

    The outcome is one of base.RECOVERED, ERRORED, FAILED (the instance
    could not even be put in ERROR and is left as the database has it)
    and LOST_RACE.
    """
    if rule is not None:
        try:
            outcome = rule.recover(manager, context, instance)
        except exception.UnexpectedTaskStateError as exc:
            # A compare-and-swap lost, in the rule or in the nova method it
            # re-ran: a newer request owns the instance. (InstanceNotFound
            # is not caught here: drivers raise it for a missing guest too,
            # and set_error already backs off when the row is gone.)
            LOG.info('Start-up recovery lost a race, leaving the instance '
                     'alone: %s', exc, instance=instance)
            return base.LOST_RACE
        except Exception as exc:
            LOG.exception('Start-up recovery of %(op)s failed',
                          {'op': base.operation_of(instance, task_state)},
                          instance=instance)
            return fail(context, instance, task_state, exc)
        if outcome != base.CONTINUE:
            return settled(instance)
    return _run_default(manager, default, context, instance)


def settled(instance):
    """The outcome an instance shows once its rule or nova's path ran."""
    if base.field(instance, 'vm_state') == vm_states.ERROR:
        return base.ERRORED
    return base.RECOVERED


def _run_default(manager, default, context, instance):
    _nova_start_up(manager, default, context, instance)
    return settled(instance)


def _nova_start_up(manager, default, context, instance):
    """Nova's own start-up of one instance; its failure is the host's.

    What fails here is nova's own step (plug the VIFs, resume the
    guest...), not an operation that the restart interrupted, and it
    mostly fails for the whole host at once (Open vSwitch not up yet).
    Putting the instance in ERROR would punish a healthy server for the
    host, so it is left as it is. Letting the exception out would stop
    the recovery of every other instance, so it is kept, and
    raise_start_up_failure lets it out of init_host once start-up has
    seen every instance: nova-compute then fails to start, as without
    recovery, and starts once the host is ready.
    """
    try:
        default(context, instance)
    except Exception as exc:
        LOG.exception("nova-compute's own start-up step failed; leaving the "
                      'instance as it is, and nova-compute will not start',
                      instance=instance)
        state.of(manager).failures.append(exc)


def raise_start_up_failure(manager):
    """Fail start-up, as nova does, if nova's own step failed.

    Called at the end of init_host. Raises the first failure; a second
    call has nothing left to raise.
    """
    recovery = state.of(manager)
    failures, recovery.failures = recovery.failures, []
    if failures:
        LOG.error("nova-compute's own start-up step failed for %d "
                  'instance(s), which were left as they were; failing '
                  'start-up with the first failure', len(failures))
        raise failures[0]


def fail(context, instance, task_state, exc):
    """ERROR plus a fault, or leave the instance as the DB has it."""
    expected = list({task_state, base.field(instance, 'task_state')})
    if isinstance(exc, (base.RecoveryFailed, base.Interrupted)):
        # A rule's own fault already names the interrupted operation.
        fault = exc
    else:
        fault = base.interrupted(instance, task_state, reason=str(exc))
    try:
        if base.set_error(context, instance, expected, fault):
            return base.ERRORED
        return base.LOST_RACE
    except Exception:
        LOG.exception('Could not put the instance in ERROR after a failed '
                      'start-up recovery; leaving it as it is',
                      instance=instance)
        return base.FAILED


def serving(manager):
    """Nova started the manager's RPC server(s): queued requests now flow.

    A gate that waits for a request counts its time from here (the
    deferred sweep of queued.py does).
    """
    for gate in order.GATES:
        gate.serving(manager)
