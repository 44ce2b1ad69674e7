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

"""Who answers for each task state at nova-compute start-up.

The facts are the task-state registry's (startup_recovery/registry.py); this
module puts them beside the rules as the engine runs them. Every task
state that the installed nova defines is either owned by a rule module
in order.RULES (its STATES, read from the registry) or listed in
LEFT_TO_NOVA with the reason. The coverage test walks nova's own list, so
a nova release that adds a task state fails that test until someone
records it in the registry; doc/coverage.rst is generated from here by
tools/gen_coverage_doc.py.

Nothing here runs at start-up: the engine asks the rules' ``owns()``.
This module is the map that a reviewer and the tests read.
"""

import collections

from nova.compute import task_states
from nova.objects import fields

from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import order
from nova_recover.startup_recovery import registry

# Task states that one nova-compute saves just before it casts the next
# step to another host, which instance.host already names: at that
# host's start-up the cast may still be queued.
CAST_BY_COMPUTE = frozenset(state.name for state in registry.TASK_STATES
                            if registry.OTHER_COMPUTE in state.set_by)

# Task states that the API (or the conductor) saves before it casts to
# nova-compute: at start-up the request may still be queued. Every other
# task state is saved by nova-compute while it works, so seeing it at
# start-up means the work ran in the process that died.
API_SET = frozenset(state.name for state in registry.TASK_STATES
                    if {registry.API, registry.CONDUCTOR} & set(state.set_by))

# Task states no rule owns, and why nova's own start-up path is right for
# them. Empty on nova 34: every state has an owner. A new nova's state
# goes either to a rule's STATES or here, with the reason.
LEFT_TO_NOVA = {}

# API-set states for which evidence.py does not look for the request:
# start-up recovers them as reached.
NOT_CHECKED = {state.name: state.unchecked
               for state in registry.TASK_STATES if state.unchecked}

# Pairs of rules that can both claim one instance, in the order they
# must appear in order.RULES, with the reason the first one wins.
ORDERED_OVERLAPS = {
    ('deleting', 'build'):
        'a delete requested during a build (task_state DELETING, vm_state '
        'BUILDING) is what the user asked for last: finish the delete '
        'rather than error the build',
    ('build', 'unshelve'):
        'both list SPAWNING, which _unshelve_instance also saves while it '
        'spawns an offloaded server; build.owns() refuses SPAWNING on a '
        'SHELVED_OFFLOADED instance and unshelve.owns() takes only that, so '
        'no instance is claimed by both',
}

# The vm_states an instance can have while in each task state: the
# check_instance_state() guards of nova/compute/api.py for API-set
# states, and the state nova-compute works from for the others.
VM_STATES = {state.name: state.vm_states for state in registry.TASK_STATES}

# Where each state ends after start-up recovery, as the rule modules'
# docstrings describe it; the census test checks the real outcome.
ENDS = {state.name: state.end for state in registry.TASK_STATES}


def installed_task_states():
    """Every task state the installed nova defines, in nova's order.

    Both nova's object enum and the task_states module are read: a state
    added to one and not yet the other is still caught (and listed last).
    """
    found = list(fields.InstanceTaskState.ALL)
    extra = set()
    for name in dir(task_states):
        value = getattr(task_states, name)
        if name.isupper() and isinstance(value, str) and value not in found:
            extra.add(value)
    return found + sorted(extra)


def rule_name(rule):
    return rule.__name__.rsplit('.', 1)[-1]


def rule_states(rule):
    """The task states a rule module declares in its STATES."""
    return frozenset(rule.STATES)


def owners(task_state, rules=None):
    """The rule modules that declare task_state, in engine order."""
    rules = order.RULES if rules is None else rules
    return [rule for rule in rules if task_state in rule_states(rule)]


def owner(task_state):
    """The rule module that recovers task_state, or None."""
    found = owners(task_state)
    return found[0] if found else None


def set_by(task_state):
    """Who saves task_state, as the registry records it."""
    state = registry.BY_NAME.get(task_state)
    if state is None:
        return 'unknown'
    return ', '.join(state.set_by) or 'never saved'


def evidence_class(task_state):
    """How start-up tells a queued request of task_state from a dead one.

    Read from evidence.py's tables, so the document cannot drift from
    what the engine does.
    """
    operation = evidence.API_SET.get(task_state)
    if operation is None:
        return 'always reached'
    return 'queued unless ' + ' or '.join(
        evidence.PREFIX + method for method in operation.methods)


def actions_of(task_state):
    """The instance actions the request of task_state records."""
    state = registry.BY_NAME.get(task_state)
    return ', '.join(state.actions) if state is not None else ''


def recovery_end(task_state):
    rule = owner(task_state)
    if rule is None:
        if task_state in LEFT_TO_NOVA:
            return "nova's own start-up path"
        return 'STUCK: no owner'
    return ENDS.get(task_state,
                    'see nova_recover/startup_recovery/rules/%s.py'
                    % rule_name(rule))


Row = collections.namedtuple(
    'Row', ['task_state', 'set_by', 'actions', 'evidence', 'owner',
            'vm_states', 'end'])


def table():
    """One Row per task state of the installed nova."""
    rows = []
    for state in installed_task_states():
        rule = owner(state)
        if rule is not None:
            who = rule_name(rule)
        elif state in LEFT_TO_NOVA:
            who = 'left to nova: %s' % LEFT_TO_NOVA[state]
        else:
            who = 'NONE'
        rows.append(Row(state, set_by(state), actions_of(state),
                        evidence_class(state), who,
                        ', '.join(VM_STATES.get(state, ())),
                        recovery_end(state)))
    return rows
