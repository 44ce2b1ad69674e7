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

"""What the engine expects of a rule and of a gate.

The engine (engine.py) runs two kinds of plug-ins: rules, which settle
an instance that a restart left in a transitional state, and gates,
which may hold an instance back from recovery and hear how each
recovery ended. Both stay plain modules, listed in order.RULES and
order.GATES; a module satisfies a typing.Protocol when it has the
protocol's attributes and functions (PEP 544), so the modules need no
base class, and ``isinstance(module, Rule)`` checks that one has them
all (the unit tests check every listed module). A host pass
(HostPass) is a value a rule module defines, listed in
order.HOST_PASSES.

The protocols say what each function must do and why: the engine relies
on it, and a new rule or gate that breaks it breaks start-up for every
instance of the host, not only its own.

This module imports nothing from the package, so that any module of it
may import this one without a cycle.
"""

import dataclasses
import typing

from nova import context as nova_context
from nova import objects

# The engine's start-up path for one instance, nova's _init_instance:
# ``nova_path(context, instance)``.
NovaPath = typing.Callable[[nova_context.RequestContext, objects.Instance],
                           None]


@typing.runtime_checkable
class Rule(typing.Protocol):
    """A start-up recovery rule: a module listed in order.RULES.

    A rule owns some transitional states and knows how to settle an
    instance that a dead nova-compute left in one of them: finish what
    the dead process did, or undo it, so that the server is usable again
    and says truthfully what happened to the request.
    """

    #: The task states whose instances the engine asks this rule about.
    #: The engine indexes RULES by them, so that a healthy instance costs
    #: a dictionary look-up rather than a call to every rule; a task
    #: state missing here never reaches owns(), whatever owns() says.
    STATES: frozenset[str]

    #: The vm_states, with or without a task state, whose instances the
    #: engine asks this rule about (a build that died before its first
    #: task state, a delete that finished in the database only). Indexed
    #: like STATES, for the same reason.
    OWNED_VM_STATES: frozenset[str]

    def owns(self, instance: objects.Instance) -> bool:
        """Whether this rule settles the instance, as it is now.

        Called only for an instance whose task_state is in STATES or
        whose vm_state is in OWNED_VM_STATES, in order.RULES order, and
        the first rule that answers True gets the instance: a rule
        listed earlier may so take a state from a later one (deleting
        before build). It must only read the instance's loaded fields: it
        runs for every candidate of every start-up, before anything else
        is known, and a database or hypervisor call here would slow
        every start-up and could fail where no answer is allowed. It
        must not raise.
        """

    def recover(self, manager: typing.Any,
                context: nova_context.RequestContext,
                instance: objects.Instance) -> str:
        """Settle an instance that this rule owns; say what start-up owes.

        Returns base.HANDLED when the instance needs nothing more at
        start-up (the rule left it as the user can use it, or deleted
        it), or base.CONTINUE when the transitional state is cleaned and
        nova's own start-up path (plug the VIFs, resume the guest) must
        still run, as for any healthy instance. Every state change is a
        compare-and-swap on the task state (base.settle), because a
        request that arrives meanwhile is newer than the one that died
        and must win.

        It may raise. exception.UnexpectedTaskStateError means a newer
        request took the instance over: the engine leaves the instance
        to it and counts the recovery as a lost race. Any other
        exception means the rule could not settle the instance: the
        engine puts it in ERROR with an instance fault that names the
        interrupted operation (a base.RecoveryFailed or base.Interrupted
        raised by the rule is the fault as it is), so that the owner
        sees why and nothing is left half done without a word. The
        engine catches everything: a rule never stops the start-up of
        the other instances.

        :param manager: the ComputeManager starting up; its driver,
            network API and other clients are what the rule uses.
        """


@dataclasses.dataclass(frozen=True)
class GateRequest(object):
    """What a gate is told of one instance that start-up recovery sees.

    One value, not positional arguments, so that a gate reads what it
    needs by name and a new field does not change every gate. Frozen,
    because every gate in order.GATES gets the same request in turn and
    none may change what the next one sees.
    """

    #: The ComputeManager starting up.
    manager: typing.Any
    context: nova_context.RequestContext
    instance: objects.Instance
    #: The instance's task state, read once before any gate runs: every
    #: gate and the rule judge the same state, and start-up does not
    #: read the field again for every gate of every instance.
    task_state: typing.Optional[str]
    #: The rule that owns the instance (engine.rule_for), or None when
    #: no rule does: a healthy instance, or one nova handles itself.
    rule: typing.Optional[Rule]
    #: Runs nova's own start-up path for an instance, as without
    #: recovery; never raises (the engine keeps nova's failure for the
    #: end of init_host). A gate that holds an instance back and wants
    #: nova's path for it (a disabled rule, a dry run) calls it.
    nova_path: NovaPath
    #: ``report(request, outcome)`` tells every gate how the recovery of
    #: an instance ended (the engine's recovered): a gate that settles an
    #: instance later, as queued.py does through the sweep, reports it
    #: through this, with a request of its own for that instance.
    report: typing.Callable[['GateRequest', str], None]
    #: The migration a host pass found the instance by (HostPass); None
    #: for an instance of this host, which start-up sees itself. A gate
    #: tells the two apart by it: the instance of a host pass is not
    #: this host's, so a request for it that may still be queued is left
    #: to run, never watched or taken as lost.
    migration: typing.Optional['objects.Migration'] = None
    #: The request of a host pass that no task_state shows
    #: (HostPass.request), so that a gate looks for that request's
    #: evidence and closes its events; None where the task_state says
    #: which request it is.
    unshown: typing.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class HostPass(object):
    """A start-up pass over operations that no _init_instance sees.

    Some interrupted operations leave their instance on another host's
    record: an evacuation to this host still names the source, and a
    resize confirm that died on this source host shows no task_state on
    an instance of the destination. Start-up finds them by the
    migrations of this host instead. A rule module that owns such an
    operation defines one HostPass, and order.HOST_PASSES lists it with
    the rule; the engine runs it once per start-up, after nova's own
    steps, through the same gates as an instance of this host.
    """

    #: ``find(manager, context)``: the (instance, migration) pairs the
    #: dead process left unfinished. May raise: the engine then logs it
    #: and skips this pass, and the next start-up looks again.
    find: typing.Callable[[typing.Any, nova_context.RequestContext],
                          typing.Iterable[typing.Tuple['objects.Instance',
                                                       'objects.Migration']]]
    #: ``recover(manager, context, instance, migration)``: settle one of
    #: them, as Rule.recover settles an instance (the same exceptions
    #: mean the same to the engine); what it returns is not used.
    recover: typing.Callable[[typing.Any, nova_context.RequestContext,
                              'objects.Instance', 'objects.Migration'],
                             typing.Any]
    #: The manager method of a request that no task_state shows (one of
    #: evidence.UNSHOWN), or None where the task_state says which it is.
    request: typing.Optional[str] = None


@typing.runtime_checkable
class Gate(typing.Protocol):
    """A gate of the engine: a module listed in order.GATES.

    Gates run before any rule, in order.GATES order, for every instance
    that start-up sees on this host, and hear how each recovery ended.
    They hold what is not a rule's business: the operator's controls
    (controls.py) and requests that may still be on the queue
    (queued.py).
    """

    def holds(self, request: GateRequest) -> bool:
        """Whether to keep the instance from recovery; True takes it over.

        Called for every instance of this host, healthy ones included
        (request.rule and request.task_state are then None), so it must
        be cheap there. True means the gate takes the instance over: no
        later gate and no rule runs for it, and nova's own start-up path
        does not run either unless the gate calls request.nova_path
        itself, so a gate that holds an instance must either run that
        path or arrange for it to run later (queued.py has the sweep run
        it once the request it waited for turns out lost).

        It must not raise: start-up must go on for every other instance,
        and an exception here would stop init_host. A gate that cannot
        tell must give the answer that can do no harm: queued holds an
        instance whose evidence cannot be read, since recovering a
        request that may still arrive would throw it away.
        """

    def check_options(self, rules: typing.Sequence[Rule]) -> None:
        """Refuse wrong options before init_host touches any instance.

        Called once, at the start of init_host, with order.RULES. Raise
        to stop nova-compute: an option that cannot be honoured (a rule
        name that does not exist) would otherwise change what start-up
        does without a word. A gate without options does nothing.
        """

    def serving(self, manager: typing.Any) -> None:
        """Hear that nova started the manager's RPC server(s).

        Called once per start-up, from the manager's post_start_hook:
        from here a request still on the queue can arrive, so a gate
        that waits for one counts its time from now. Must not raise.
        """

    def finished(self, manager: typing.Any) -> None:
        """Hear that init_host has seen every instance of the host.

        Called once per start-up, at the end of init_host, also when it
        failed, so that a gate can report what start-up recovery did.
        Must not raise.
        """

    def recovered(self, request: GateRequest, outcome: str) -> None:
        """Hear how the recovery of one instance ended.

        ``outcome`` is base.RECOVERED, ERRORED, FAILED, LOST_RACE or
        LOST (the request never arrived). Called once for each instance
        that went through recovery, including those a gate held back
        and settled later as lost; what a gate does here (count it, log
        it, close the request's instance action events) comes after the
        instance is settled and must never undo or block it.

        It must not raise, for the same reason as holds(): the recovery
        is done, and the other gates and instances must still hear of
        theirs.
        """
