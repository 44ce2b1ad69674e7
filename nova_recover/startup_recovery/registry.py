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

"""What start-up recovery knows about each of nova's task states.

One record per task state, written once: who saves the state, which
instance actions its request records, which compute manager methods
prove that the request reached a host (and which of them hand the
operation on to another service), the rule that owns it, the vm_states
it can come with and where recovery leaves the instance. Everything
else is derived from here: the rules' STATES, the evidence tables
(evidence.py), the operation names of faults (base.py), the coverage map
and its document (coverage.py, doc/source/coverage.rst) and the audit's
verdicts (audit/verdict.py).

Plain data, with nova's own string values rather than its constants:
the audit runs where nova is not installed, and importing nova here
would pull the compute manager's world into it. The unit tests compare
every value with the installed nova (task states, vm_states, instance
actions, and methods that nova wraps with its compute_ event).
"""

import dataclasses
import typing

# Who saves a task state.
API = 'API'
CONDUCTOR = 'conductor'
THIS_COMPUTE = 'this compute'
# The compute host that works on the instance before this one: it saves
# the state with instance.host already naming this host, then casts here.
OTHER_COMPUTE = 'the other compute'

# nova.compute.vm_states values.
ACTIVE = 'active'
BUILDING = 'building'
ERROR = 'error'
PAUSED = 'paused'
RESCUED = 'rescued'
RESIZED = 'resized'
SHELVED = 'shelved'
SHELVED_OFFLOADED = 'shelved_offloaded'
SOFT_DELETED = 'soft-delete'
STOPPED = 'stopped'
SUSPENDED = 'suspended'

_GUEST = (ACTIVE, STOPPED)
_SNAPSHOT = (ACTIVE, STOPPED, PAUSED, SUSPENDED)
# nova.compute.vm_states.ALLOW_SOFT_REBOOT and ALLOW_HARD_REBOOT.
_SOFT_REBOOT = (ACTIVE,)
_HARD_REBOOT = (ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR)
_REBUILD = (ACTIVE, STOPPED, ERROR)

# The ends, as the rules' docstrings describe them; the census test
# checks the real outcome of every (task state, vm_state, power state).
_ERRORED = 'ERROR + fault'
_CLEARED = 'task cleared, guest as found'
_AS_GUEST = 'vm_state of the guest (ERROR + fault if gone)'
_REVERTED = ('reverted on the source; a destination hands the revert to '
             'the source')
_REBUILT = (_ERRORED + '; an evacuation to a destination that died: ERROR '
            '+ fault on the source, migration failed, evacuate again')
_SHELVED = ('SHELVED (SHELVED_OFFLOADED if shelved_offload_time is 0) if '
            'its image is whole in glance, else ')
_NOTED = '; compute_snapshot_interrupted Error event if handed off'
_SAVED = '; a guest left off with its memory saved is started from it'
_UNRESCUED = ('unrescued: ACTIVE or STOPPED, the original guest kept as '
              'it is where the record unrescue needs is gone; ERROR + '
              'fault if unrescue fails or only the rescue guest is left')


@dataclasses.dataclass(frozen=True)
class TaskState:
    """The facts about one task state that start-up recovery acts on."""

    #: nova's value of the task state (nova.compute.task_states).
    name: str
    #: The operation, as an operator names it in an instance fault.
    operation: str
    #: Who saves it: API, CONDUCTOR, THIS_COMPUTE, OTHER_COMPUTE. Empty
    #: for a state that the installed nova defines but never saves.
    set_by: typing.Tuple[str, ...]
    #: The instance actions (nova.compute.instance_actions values) that
    #: the request which leads to the state records.
    actions: typing.Tuple[str, ...]
    #: The manager methods whose compute_<method> event, on this host,
    #: proves that the request reached it; for a state only this compute
    #: saves, the events a dead run left open.
    methods: typing.Tuple[str, ...]
    #: The rules that may own it, in the order the engine asks them.
    rules: typing.Tuple[str, ...]
    #: The vm_states it comes with: the API's check_instance_state guards
    #: for what the API saves, the state nova-compute works from else.
    vm_states: typing.Tuple[str, ...]
    #: Where start-up recovery leaves the instance.
    end: str
    #: Those of ``methods`` that end by passing the operation on to
    #: another service with the task state unchanged: their finished
    #: event is a hand-off, not a death.
    hands_on: typing.Tuple[str, ...] = ()
    #: Why start-up does not look for the request of a state saved before
    #: a cast, and so recovers it as reached; None when it looks.
    unchecked: typing.Optional[str] = None

    @property
    def saved_before_cast(self):
        """Whether the request may still be queued when start-up sees it.

        Anything but this compute saves the state before a cast to it.
        """
        return any(who != THIS_COMPUTE for who in self.set_by)

    @property
    def checked(self):
        """Whether start-up asks the evidence before recovering it."""
        return self.saved_before_cast and self.unchecked is None


def _state(name, operation, set_by, actions, methods, rules, vm_states,
           end, **kwargs):
    return TaskState(name, operation, tuple(set_by), tuple(actions),
                     tuple(methods), tuple(rules), tuple(vm_states), end,
                     **kwargs)


_BUILD = '_do_build_and_run_instance'
_RESIZE_AT_SOURCE = ('prep_resize', 'resize_instance',
                     'prep_snapshot_based_resize_at_dest',
                     'prep_snapshot_based_resize_at_source')
_REVERT = ('revert_resize', 'finish_revert_resize',
           'revert_snapshot_based_resize_at_dest',
           'finish_revert_snapshot_based_resize_at_source')
# What a delete is allowed from; a shelved-offloaded server is deleted
# by the API itself and never reaches a host.
_DELETABLE = (BUILDING, ACTIVE, STOPPED, PAUSED, SUSPENDED, RESCUED,
              RESIZED, SHELVED, ERROR, SOFT_DELETED)

TASK_STATES = (
    # The API gives it to the build request's instance, and in cells v2
    # the conductor creates the instance in its cell with it.
    _state('scheduling', 'build', [API, CONDUCTOR], ['create'], [_BUILD],
           ['build'], [BUILDING], _ERRORED,
           unchecked='the instance has this host only once the conductor '
                     'picked it, and a build is never retried from '
                     'start-up'),
    _state('block_device_mapping', 'build', [THIS_COMPUTE], ['create'],
           [_BUILD], ['build'], [BUILDING], _ERRORED),
    _state('networking', 'build', [THIS_COMPUTE], ['create'], [_BUILD],
           ['build'], [BUILDING], _ERRORED),
    # _unshelve_instance spawns an offloaded server under SPAWNING too:
    # build.owns() refuses that one and unshelve.owns() takes only it.
    _state('spawning', 'build', [THIS_COMPUTE], ['create', 'unshelve'],
           [_BUILD, 'unshelve_instance'], ['build', 'unshelve'],
           [BUILDING, SHELVED_OFFLOADED],
           _ERRORED + '; an unshelve: ACTIVE if the guest runs here, else '
                      'SHELVED_OFFLOADED'),
    _state('image_snapshot', 'snapshot', [THIS_COMPUTE], ['createImage'],
           ['snapshot_instance'], ['snapshot'], _SNAPSHOT,
           _CLEARED + _NOTED),
    _state('image_snapshot_pending', 'snapshot', [API], ['createImage'],
           ['snapshot_instance'], ['snapshot'], _SNAPSHOT,
           _CLEARED + _NOTED),
    _state('image_pending_upload', 'snapshot', [THIS_COMPUTE],
           ['createImage', 'createBackup'],
           ['snapshot_instance', 'backup_instance'], ['image_upload'],
           _SNAPSHOT,
           _CLEARED + ', image deleted' + _SAVED + _NOTED),
    _state('image_uploading', 'snapshot', [THIS_COMPUTE],
           ['createImage', 'createBackup'],
           ['snapshot_instance', 'backup_instance'], ['image_upload'],
           _SNAPSHOT,
           _CLEARED + ', image deleted' + _SAVED + _NOTED),
    _state('image_backup', 'backup', [API], ['createBackup'],
           ['backup_instance'], ['image_upload'], _SNAPSHOT,
           _CLEARED + ', image deleted' + _SAVED),
    _state('updating_password', 'password update', [API],
           ['changePassword'], ['set_admin_password'], ['password'],
           [ACTIVE], _CLEARED),
    # prep_resize runs on the destination and resize_instance on the
    # source, which instance.host still names: a resize to another host
    # is this host's once its source step started here.
    _state('resize_prep', 'resize', [API], ['resize', 'migrate'],
           _RESIZE_AT_SOURCE, ['resize'], _GUEST, _REVERTED,
           hands_on=('prep_resize', 'prep_snapshot_based_resize_at_dest')),
    _state('resize_migrating', 'resize', [THIS_COMPUTE],
           ['resize', 'migrate'], ['resize_instance'], ['resize'], _GUEST,
           _REVERTED + '; a guest still running with its disk in place is '
                       'kept'),
    # The source saves it with instance.host already the destination,
    # just before it casts finish_resize there.
    _state('resize_migrated', 'resize', [OTHER_COMPUTE],
           ['resize', 'migrate'], ['finish_resize'], ['resize'], _GUEST,
           _REVERTED),
    _state('resize_finish', 'resize', [THIS_COMPUTE], ['resize', 'migrate'],
           ['finish_resize'], ['resize'], _GUEST, _REVERTED),
    _state('resize_reverting', 'resize revert', [API], ['revertResize'],
           _REVERT, ['resize'], [RESIZED], _REVERTED,
           hands_on=('revert_resize',
                     'revert_snapshot_based_resize_at_dest')),
    # Never saved by nova 34: a confirm leaves the server RESIZED with no
    # task, and start-up finds it by its migration's 'confirming' status
    # (evidence.UNSHOWN).
    _state('resize_confirming', 'resize confirm', [], ['confirmResize'],
           ['confirm_resize'], ['resize'], [RESIZED],
           'RESIZED, confirm can be asked again (never set by nova 34: see '
           'below)'),
    _state('rebooting', 'reboot', [API], ['reboot'], ['reboot_instance'],
           ['reboot'], _SOFT_REBOOT, 'ACTIVE (reboot retried)'),
    _state('reboot_pending', 'reboot', [THIS_COMPUTE], ['reboot'],
           ['reboot_instance'], ['reboot'], _SOFT_REBOOT,
           'ACTIVE (reboot retried)'),
    _state('reboot_started', 'reboot', [THIS_COMPUTE], ['reboot'],
           ['reboot_instance'], ['reboot'], _SOFT_REBOOT,
           'ACTIVE (reboot retried or recorded)'),
    _state('rebooting_hard', 'hard reboot', [API], ['reboot'],
           ['reboot_instance'], ['reboot'], _HARD_REBOOT,
           'ACTIVE (hard reboot retried)'),
    _state('reboot_pending_hard', 'hard reboot', [THIS_COMPUTE], ['reboot'],
           ['reboot_instance'], ['reboot'], _HARD_REBOOT,
           'ACTIVE (hard reboot retried)'),
    _state('reboot_started_hard', 'hard reboot', [THIS_COMPUTE], ['reboot'],
           ['reboot_instance'], ['reboot'], _HARD_REBOOT,
           'ACTIVE (hard reboot retried or recorded)'),
    _state('pausing', 'pause', [API], ['pause'], ['pause_instance'],
           ['pause_suspend'], [ACTIVE],
           _AS_GUEST + '; a running guest is paused'),
    _state('unpausing', 'unpause', [API], ['unpause'], ['unpause_instance'],
           ['pause_suspend'], [PAUSED],
           _AS_GUEST + '; a paused guest is unpaused'),
    _state('suspending', 'suspend', [API], ['suspend'],
           ['suspend_instance'], ['pause_suspend'], [ACTIVE],
           _AS_GUEST + '; a running guest is suspended, shut off means '
                       'SUSPENDED'),
    _state('resuming', 'resume', [API], ['resume'], ['resume_instance'],
           ['pause_suspend'], [SUSPENDED],
           _AS_GUEST + '; a suspended or shut off guest is resumed'),
    # finish_revert_resize of a stopped server saves it under the
    # revertResize action and stops the guest itself.
    _state('powering-off', 'stop', [API, THIS_COMPUTE],
           ['stop', 'revertResize'],
           ['stop_instance', 'finish_revert_resize',
            'finish_revert_snapshot_based_resize_at_source'],
           ['powering'], [ACTIVE, ERROR],
           'STOPPED (stop retried or recorded)'),
    # The conductor unshelves a SHELVED (not offloaded) server by saving
    # it under the unshelve action and casting start_instance.
    _state('powering-on', 'start', [API, CONDUCTOR], ['start', 'unshelve'],
           ['start_instance'], ['powering'], [STOPPED],
           'ACTIVE (start retried or recorded)'),
    _state('rescuing', 'rescue', [API], ['rescue'], ['rescue_instance'],
           ['rescue'], [ACTIVE, STOPPED, ERROR], _UNRESCUED),
    _state('unrescuing', 'unrescue', [API], ['unrescue'],
           ['unrescue_instance'], ['rescue'], [RESCUED], _UNRESCUED),
    # An evacuation runs rebuild_instance on the destination, so its
    # event never names this (source) host: the instance is left to it.
    _state('rebuilding', 'rebuild', [API], ['rebuild', 'evacuate'],
           ['rebuild_instance'], ['rebuild'], _REBUILD, _REBUILT),
    _state('rebuild_block_device_mapping', 'rebuild', [THIS_COMPUTE],
           ['rebuild', 'evacuate'], ['rebuild_instance'], ['rebuild'],
           _REBUILD, _REBUILT),
    _state('rebuild_spawning', 'rebuild', [THIS_COMPUTE],
           ['rebuild', 'evacuate'], ['rebuild_instance'], ['rebuild'],
           _REBUILD, _REBUILT),
    _state('migrating', 'live migration', [API], ['live-migration'],
           ['live_migration'], ['live_migration'], [ACTIVE, PAUSED],
           'migration reset, ACTIVE/PAUSED here; ERROR + fault if the '
           'guest left'),
    _state('deleting', 'delete', [API], ['delete'], ['terminate_instance'],
           ['deleting'], _DELETABLE, 'deleted (the user asked for it)',
           unchecked='a delete is finished whatever its request did'),
    # api.soft_delete goes through api._delete, which records 'delete'.
    _state('soft-deleting', 'soft delete', [API], ['delete'],
           ['soft_delete_instance'], ['soft_delete'], _GUEST,
           'SOFT_DELETED (soft delete re-run)'),
    _state('restoring', 'restore', [API], ['restore'], ['restore_instance'],
           ['soft_delete'], [SOFT_DELETED], 'ACTIVE (restore re-run)'),
    # The API casts shelve_offload_instance at once for a volume-backed
    # server, still under SHELVING.
    _state('shelving', 'shelve', [API], ['shelve'],
           ['shelve_instance', 'shelve_offload_instance'], ['shelve'],
           _SNAPSHOT, _SHELVED + "rolled back to the guest's vm_state"),
    _state('shelving_image_pending_upload', 'shelve', [THIS_COMPUTE],
           ['shelve'], ['shelve_instance'], ['shelve'], _SNAPSHOT,
           _SHELVED + "rolled back to the guest's vm_state, image deleted"),
    _state('shelving_image_uploading', 'shelve', [THIS_COMPUTE],
           ['shelve'], ['shelve_instance'], ['shelve'], _SNAPSHOT,
           _SHELVED + "rolled back to the guest's vm_state, image deleted"),
    # The API saves it for shelveOffload; shelve_instance saves it itself,
    # under the shelve action, when shelved_offload_time is 0.
    _state('shelving_offloading', 'shelve offload', [API, THIS_COMPUTE],
           ['shelveOffload', 'shelve'],
           ['shelve_offload_instance', 'shelve_instance'], ['shelve_offload'],
           [SHELVED],
           'SHELVED_OFFLOADED if the image is in glance, else SHELVED'),
    _state('unshelving', 'unshelve', [API], ['unshelve'],
           ['unshelve_instance'], ['unshelve'],
           [SHELVED, SHELVED_OFFLOADED],
           'ACTIVE if the guest runs here, else back to its shelved state'),
)

BY_NAME = {state.name: state for state in TASK_STATES}


def owned_by(rule):
    """The task states that list ``rule`` (a rule's name) as an owner."""
    return frozenset(state.name for state in TASK_STATES
                     if rule in state.rules)


def operation(task_state):
    """The operation a task state belongs to, or None for an unknown one."""
    state = BY_NAME.get(task_state)
    return state.operation if state is not None else None
