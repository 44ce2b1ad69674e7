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

Every task state that the installed nova defines is either owned by a
rule module in engine.RULES (through the module's STATES) or listed in
LEFT_TO_NOVA with the reason. The coverage test walks nova's own list, so
a nova release that adds a task state fails that test until someone
decides who owns the new state; doc/coverage.rst is generated from here
by tools/gen_coverage_doc.py.

Nothing here runs at start-up: the engine asks the rules' ``owns()``.
This module is the map that a reviewer and the tests read.
"""

import collections

from nova.compute import task_states
from nova.compute import vm_states
from nova.objects import fields

from nova_recover.recovery import engine
from nova_recover.recovery import evidence

API = 'API'
COMPUTE = 'compute'
COMPUTE_THEN_CAST = 'compute, then cast'

# Task states that one nova-compute saves just before it casts the next
# step to another host, which instance.host already names: at that
# host's start-up the cast may still be queued.
CAST_BY_COMPUTE = frozenset([task_states.RESIZE_MIGRATED])

# Task states that the API (or the conductor, for a build) writes before
# it casts to nova-compute: at start-up the request may still be queued.
# Every other task state is written by nova-compute while it works, so
# seeing it at start-up means the work ran in the process that died.
API_SET = frozenset([
    task_states.SCHEDULING,
    task_states.IMAGE_SNAPSHOT_PENDING,
    task_states.IMAGE_BACKUP,
    task_states.UPDATING_PASSWORD,
    task_states.RESIZE_PREP,
    task_states.RESIZE_REVERTING,
    task_states.REBOOTING,
    task_states.REBOOTING_HARD,
    task_states.PAUSING,
    task_states.UNPAUSING,
    task_states.SUSPENDING,
    task_states.RESUMING,
    task_states.POWERING_OFF,
    task_states.POWERING_ON,
    task_states.RESCUING,
    task_states.UNRESCUING,
    task_states.REBUILDING,
    task_states.MIGRATING,
    task_states.DELETING,
    task_states.SOFT_DELETING,
    task_states.RESTORING,
    task_states.SHELVING,
    task_states.SHELVING_OFFLOADING,
    task_states.UNSHELVING,
])

# Task states no rule owns, and why nova's own start-up path is right for
# them. Empty on nova 34: every state has an owner. A new nova's state
# goes either to a rule's STATES or here, with the reason.
LEFT_TO_NOVA = {}

# API-set states for which evidence.py does not look for the request:
# start-up recovers them as reached.
NOT_CHECKED = {
    task_states.SCHEDULING:
        'the instance has this host only once the conductor picked it, '
        'and a build is never retried from start-up',
    task_states.DELETING:
        'a delete is finished whatever its request did',
}

# Pairs of rules that can both claim one instance, in the order they
# must appear in engine.RULES, with the reason the first one wins.
ORDERED_OVERLAPS = {
    ('deleting', 'build'):
        'a delete requested during a build (task_state DELETING, vm_state '
        'BUILDING) is what the user asked for last: finish the delete '
        'rather than error the build',
    ('build', 'shelve'):
        'both list SPAWNING, which _unshelve_instance also saves while it '
        'spawns an offloaded server; build.owns() refuses SPAWNING on a '
        'SHELVED_OFFLOADED instance and shelve.owns() takes only that, so '
        'no instance is claimed by both',
}

# The vm_states an instance can have while in each task state: the
# check_instance_state() guards of nova/compute/api.py for API-set
# states, and the state nova-compute works from for the others.
_GUEST = (vm_states.ACTIVE, vm_states.STOPPED)
_SNAPSHOT = (vm_states.ACTIVE, vm_states.STOPPED, vm_states.PAUSED,
             vm_states.SUSPENDED)
VM_STATES = {
    task_states.SCHEDULING: (vm_states.BUILDING,),
    task_states.BLOCK_DEVICE_MAPPING: (vm_states.BUILDING,),
    task_states.NETWORKING: (vm_states.BUILDING,),
    # An unshelve spawns an offloaded server under SPAWNING too.
    task_states.SPAWNING: (vm_states.BUILDING, vm_states.SHELVED_OFFLOADED),
    task_states.IMAGE_SNAPSHOT_PENDING: _SNAPSHOT,
    task_states.IMAGE_SNAPSHOT: _SNAPSHOT,
    task_states.IMAGE_PENDING_UPLOAD: _SNAPSHOT,
    task_states.IMAGE_UPLOADING: _SNAPSHOT,
    task_states.IMAGE_BACKUP: _SNAPSHOT,
    task_states.UPDATING_PASSWORD: (vm_states.ACTIVE,),
    task_states.RESIZE_PREP: _GUEST,
    task_states.RESIZE_MIGRATING: _GUEST,
    task_states.RESIZE_MIGRATED: _GUEST,
    task_states.RESIZE_FINISH: _GUEST,
    task_states.RESIZE_REVERTING: (vm_states.RESIZED,),
    task_states.RESIZE_CONFIRMING: (vm_states.RESIZED,),
    task_states.REBOOTING: tuple(vm_states.ALLOW_SOFT_REBOOT),
    task_states.REBOOT_PENDING: tuple(vm_states.ALLOW_SOFT_REBOOT),
    task_states.REBOOT_STARTED: tuple(vm_states.ALLOW_SOFT_REBOOT),
    task_states.REBOOTING_HARD: tuple(vm_states.ALLOW_HARD_REBOOT),
    task_states.REBOOT_PENDING_HARD: tuple(vm_states.ALLOW_HARD_REBOOT),
    task_states.REBOOT_STARTED_HARD: tuple(vm_states.ALLOW_HARD_REBOOT),
    task_states.PAUSING: (vm_states.ACTIVE,),
    task_states.UNPAUSING: (vm_states.PAUSED,),
    task_states.SUSPENDING: (vm_states.ACTIVE,),
    task_states.RESUMING: (vm_states.SUSPENDED,),
    task_states.POWERING_OFF: (vm_states.ACTIVE, vm_states.ERROR),
    task_states.POWERING_ON: (vm_states.STOPPED,),
    task_states.RESCUING: (vm_states.ACTIVE, vm_states.STOPPED,
                           vm_states.ERROR),
    task_states.UNRESCUING: (vm_states.RESCUED,),
    task_states.REBUILDING: (vm_states.ACTIVE, vm_states.STOPPED,
                             vm_states.ERROR),
    task_states.REBUILD_BLOCK_DEVICE_MAPPING: (vm_states.ACTIVE,
                                               vm_states.STOPPED,
                                               vm_states.ERROR),
    task_states.REBUILD_SPAWNING: (vm_states.ACTIVE, vm_states.STOPPED,
                                   vm_states.ERROR),
    task_states.MIGRATING: (vm_states.ACTIVE, vm_states.PAUSED),
    # The API allows a delete in any vm_state; a shelved-offloaded one is
    # deleted by the API itself and never reaches a host.
    task_states.DELETING: (vm_states.BUILDING, vm_states.ACTIVE,
                           vm_states.STOPPED, vm_states.PAUSED,
                           vm_states.SUSPENDED, vm_states.RESCUED,
                           vm_states.RESIZED, vm_states.SHELVED,
                           vm_states.ERROR, vm_states.SOFT_DELETED),
    task_states.SOFT_DELETING: (vm_states.ACTIVE, vm_states.STOPPED),
    task_states.RESTORING: (vm_states.SOFT_DELETED,),
    task_states.SHELVING: _SNAPSHOT,
    task_states.SHELVING_IMAGE_PENDING_UPLOAD: _SNAPSHOT,
    task_states.SHELVING_IMAGE_UPLOADING: _SNAPSHOT,
    task_states.SHELVING_OFFLOADING: (vm_states.SHELVED,),
    task_states.UNSHELVING: (vm_states.SHELVED,
                             vm_states.SHELVED_OFFLOADED),
}

# Where each state ends after start-up recovery, as the rule modules'
# docstrings describe it; the census test checks the real outcome.
_ERROR = 'ERROR + fault'
_CLEARED = 'task cleared, guest as found'
_AS_GUEST = 'vm_state of the guest (ERROR + fault if gone)'
_REVERTED = ('reverted on the source; a destination hands the revert to '
             'the source')
# An evacuation to a destination that died: that host's start-up pass
# over its migrations (engine.recover_evacuations).
_REBUILD = (_ERROR + '; an evacuation to a destination that died: ERROR '
            '+ fault on the source, migration failed, evacuate again')
# The shelve's image whole in glance: the shelve is finished.
_SHELVED = ('SHELVED (SHELVED_OFFLOADED if shelved_offload_time is 0) if '
            'its image is whole in glance, else ')
# A snapshot whose event ended Success at its hand-off to the long-task
# pool, and whose upload did not finish.
_NOTED = '; compute_snapshot_interrupted Error event if handed off'
# A cold snapshot's managed save (libvirt, see guest_facts).
_SAVED = '; a guest left off with its memory saved is started from it'
# libvirt's unrescue.xml gone (see guest_facts): no unrescue to run.
_UNRESCUED = ('unrescued: ACTIVE or STOPPED, the original guest kept as '
              'it is where the record unrescue needs is gone; ERROR + '
              'fault if unrescue fails or only the rescue guest is left')
ENDS = {
    task_states.SCHEDULING: _ERROR,
    task_states.BLOCK_DEVICE_MAPPING: _ERROR,
    task_states.NETWORKING: _ERROR,
    task_states.SPAWNING: _ERROR + '; an unshelve: ACTIVE if the guest '
                                   'runs here, else SHELVED_OFFLOADED',
    task_states.IMAGE_SNAPSHOT_PENDING: _CLEARED + _NOTED,
    task_states.IMAGE_SNAPSHOT: _CLEARED + _NOTED,
    task_states.IMAGE_PENDING_UPLOAD: (_CLEARED + ', image deleted' + _SAVED +
                                       _NOTED),
    task_states.IMAGE_UPLOADING: (_CLEARED + ', image deleted' + _SAVED +
                                  _NOTED),
    task_states.IMAGE_BACKUP: _CLEARED + ', image deleted' + _SAVED,
    task_states.UPDATING_PASSWORD: _CLEARED,
    task_states.RESIZE_PREP: _REVERTED,
    task_states.RESIZE_MIGRATING: _REVERTED + '; a guest still running '
                                             'with its disk in place is '
                                             'kept',
    task_states.RESIZE_MIGRATED: _REVERTED,
    task_states.RESIZE_FINISH: _REVERTED,
    task_states.RESIZE_REVERTING: _REVERTED,
    task_states.RESIZE_CONFIRMING: 'RESIZED, confirm can be asked again '
                                   '(never set by nova 34: see below)',
    task_states.REBOOTING: 'ACTIVE (reboot retried)',
    task_states.REBOOT_PENDING: 'ACTIVE (reboot retried)',
    task_states.REBOOT_STARTED: 'ACTIVE (reboot retried or recorded)',
    task_states.REBOOTING_HARD: 'ACTIVE (hard reboot retried)',
    task_states.REBOOT_PENDING_HARD: 'ACTIVE (hard reboot retried)',
    task_states.REBOOT_STARTED_HARD: 'ACTIVE (hard reboot retried or '
                                     'recorded)',
    task_states.PAUSING: _AS_GUEST + '; a running guest is paused',
    task_states.UNPAUSING: _AS_GUEST + '; a paused guest is unpaused',
    task_states.SUSPENDING: _AS_GUEST + '; a running guest is suspended, '
                                        'shut off means SUSPENDED',
    task_states.RESUMING: _AS_GUEST + '; a suspended or shut off guest is '
                                      'resumed',
    task_states.POWERING_OFF: 'STOPPED (stop retried or recorded)',
    task_states.POWERING_ON: 'ACTIVE (start retried or recorded)',
    task_states.RESCUING: _UNRESCUED,
    task_states.UNRESCUING: _UNRESCUED,
    task_states.REBUILDING: _REBUILD,
    task_states.REBUILD_BLOCK_DEVICE_MAPPING: _REBUILD,
    task_states.REBUILD_SPAWNING: _REBUILD,
    task_states.MIGRATING: 'migration reset, ACTIVE/PAUSED here; ERROR + '
                           'fault if the guest left',
    task_states.DELETING: 'deleted (the user asked for it)',
    task_states.SOFT_DELETING: 'SOFT_DELETED (soft delete re-run)',
    task_states.RESTORING: 'ACTIVE (restore re-run)',
    task_states.SHELVING: _SHELVED + 'rolled back to the guest\'s '
                                     'vm_state',
    task_states.SHELVING_IMAGE_PENDING_UPLOAD:
        _SHELVED + 'rolled back to the guest\'s vm_state, image deleted',
    task_states.SHELVING_IMAGE_UPLOADING:
        _SHELVED + 'rolled back to the guest\'s vm_state, image deleted',
    task_states.SHELVING_OFFLOADING: 'SHELVED_OFFLOADED if the image is in '
                                     'glance, else SHELVED',
    task_states.UNSHELVING: 'ACTIVE if the guest runs here, else back to '
                            'its shelved state',
}


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
    return frozenset(getattr(rule, 'STATES', ()))


def owners(task_state, rules=None):
    """The rule modules that declare task_state, in engine order."""
    rules = engine.RULES if rules is None else rules
    return [rule for rule in rules if task_state in rule_states(rule)]


def owner(task_state):
    """The rule module that recovers task_state, or None."""
    found = owners(task_state)
    return found[0] if found else None


def set_by(task_state):
    """Who writes task_state (see API_SET and CAST_BY_COMPUTE)."""
    if task_state in API_SET:
        return API
    if task_state in CAST_BY_COMPUTE:
        return COMPUTE_THEN_CAST
    return COMPUTE


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


def recovery_end(task_state):
    rule = owner(task_state)
    if rule is None:
        if task_state in LEFT_TO_NOVA:
            return "nova's own start-up path"
        return 'STUCK: no owner'
    ends = getattr(rule, 'ENDS', None) or {}
    return ends.get(task_state) or ENDS.get(
        task_state, 'see nova_recover/rules/%s.py' % rule_name(rule))


Row = collections.namedtuple(
    'Row', ['task_state', 'set_by', 'evidence', 'owner', 'vm_states',
            'end'])


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
        rows.append(Row(state, set_by(state), evidence_class(state), who,
                        ', '.join(VM_STATES.get(state, ())),
                        recovery_end(state)))
    return rows
