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

"""The crash scenarios, as data: one row per way nova-compute can die.

The tests, the outcomes runner and the demo all read SCENARIOS; a new
rule module adds its rows with add(). A row says how to get the server
there, which request to send, in which driver step nova-compute dies,
and how the server ends after the restart: ``end`` with nova-recover (the
documented behaviour, asserted) and ``stock`` as measured on nova 34
without it (recorded, so a change in either shows up). Where an older
release records a request otherwise (SNAPSHOT_HANDED_OFF), the row says
what each release gives.

Both are complete rows (every field of ROW_FIELDS, see
CrashRestartTestCase.outcome), compared field by field: a field that a
row does not state, or states otherwise, is a difference. Where the end
that nova-recover actually gives is not what the server's owner needs,
``end`` states what the owner needs and ``known_problem`` names the
problem; the test then expects the failure (testtools expectFailure)
and fails as soon as the problem is fixed, so the row gets updated.

The glance fixture marks every image active from its creation, so a
row's image statuses say little: an image's presence is what counts.
The fake driver's pause, unpause, soft_delete and restore leave the
guest's power state alone, which shows in the 'guest' field.
"""

import dataclasses
import inspect
import threading
import typing

from nova.compute import power_state
from nova.tests.functional import integrated_helpers

import nova_recover.tests


@dataclasses.dataclass(frozen=True)
class Scenario:
    #: Unique, usable in a test method name.
    name: str
    #: The rule module that owns the state the crash leaves behind.
    module: str
    #: Sends the API request that nova-compute dies in; called as
    #: request(test, server) and returns at once (real RPC casts).
    request: typing.Callable
    #: The driver method that nova-compute dies in.
    crash_in: str
    #: The task_state the instance has when nova-compute dies.
    at_crash: str
    #: The documented end with nova-recover: outcome row fields.
    end: dict
    #: The end measured on stock nova 34: outcome row fields.
    stock: dict
    #: Steps run before the request, each step(test, server) -> server.
    setup: tuple = ()
    #: Boot an ACTIVE server first; False when the request builds one.
    boot: bool = True
    #: Passed to CrashRestartTestCase.crash_during (after, guest_state).
    crash_kwargs: dict = dataclasses.field(default_factory=dict)
    #: Why nova-recover's actual end differs from ``end``, the end the
    #: server's owner needs; None when it gives that end.
    known_problem: typing.Optional[str] = None

    def differences(self, row, expected):
        """{field: (expected, actual)} for every field of either row

        (ROW_FIELDS at least) whose values differ; a field that expected
        does not state is UNSTATED there.
        """
        keys = (set(ROW_FIELDS) | set(expected) | set(row)) - NOT_COMPARED
        return {key: (expected.get(key, UNSTATED), row.get(key, UNSTATED))
                for key in sorted(keys)
                if row.get(key, UNSTATED) != expected.get(key, UNSTATED)}


#: The fields of an outcome row (CrashRestartTestCase.outcome).
ROW_FIELDS = ('vm_state', 'task_state', 'host', 'flavor', 'power_state',
              'guest', 'images', 'events', 'actions', 'fault')
#: Written beside a row by the outcomes runner, not part of the end.
NOT_COMPARED = frozenset(['at_crash', 'error'])
UNSTATED = '<unstated>'
HOST = 'host1'
TINY = 'm1.tiny'


# Row builders: an action is (name, events), its events a tuple of
# (event, result) pairs; ok('x') + err('y') gives two of them.

def ok(event):
    return ((event, 'Success'),)


def err(event):
    return ((event, 'Error'),)


def unfinished(event):
    """An event that never finished: stock leaves the dead one so."""
    return ((event, None),)


#: nova 33 and 34 finish compute_snapshot_instance with Success when
#: they hand the snapshot to their long-task pool; nova 31 snapshots in
#: the request's own worker, whose event a killed process leaves open.
SNAPSHOT_HANDED_OFF = nova_recover.tests.NOVA_MAJOR >= 33

#: A snapshot that died before its upload finished: stock leaves the
#: hand-off's Success, or nova 31's open event; nova-recover adds an
#: Error event after that Success, or closes the open one as Error.
if SNAPSHOT_HANDED_OFF:
    SNAPSHOT_STOCK = ok('compute_snapshot_instance')
    SNAPSHOT_DIED = (ok('compute_snapshot_instance') +
                     err('compute_snapshot_interrupted'))
else:
    SNAPSHOT_STOCK = unfinished('compute_snapshot_instance')
    SNAPSHOT_DIED = err('compute_snapshot_instance')

#: The create action of a server that booted.
BUILT = ('create', ok('compute__do_build_and_run_instance'))


def row(vm_state, power, guest=None, task_state=None, host=HOST,
        flavor=TINY, images=(), fault=None, before=(BUILT,), request=None,
        after=()):
    """A complete outcome row.

    :param power: the power state nova records; guest, the driver's
        view of it, defaults to it.
    :param images: (name, status) of the server's images in glance.
    :param before: the actions before the request (create and setup).
    :param request: the request's own action, whose events the row's
        'events' field holds.
    :param after: actions after it, e.g. a start-up re-run's own.
    """
    def events(action):
        return [list(event) for event in action[1]]

    actions = tuple(before) + (request,) + tuple(after)
    return {
        'vm_state': vm_state, 'task_state': task_state, 'host': host,
        'flavor': flavor, 'power_state': power,
        'guest': power if guest is None else guest,
        'images': sorted(list(image) for image in images),
        'events': events(request),
        'actions': [{'action': action[0], 'events': events(action)}
                    for action in actions],
        'fault': fault,
    }


# Requests and setup steps. Each returns a callable(test, server).

def boot():
    def request(test, server):
        return test.create_server(wait=False)
    return request


def action(body):
    def request(test, server):
        test.api.post_server_action(server['id'], body)
    return request


def delete():
    def request(test, server):
        test.api.delete_server(server['id'])
    return request


def action_and_wait(body, status):
    def step(test, server):
        test.api.post_server_action(server['id'], body)
        # Nova's default of ten polls is tight on a loaded test node.
        return test._wait_for_state_change(server, status, max_retries=40)
    return step


#: The action of reset_to_error(): the API's alone, no events.
RESET = ('resetState', ())
# A reset server has no fault to wait for; nova 34 can be told so, nova
# 31 and 33 do not wait for one in the first place.
NO_FAULT_WAIT = (
    {'wait_for_fault_key': False}
    if 'wait_for_fault_key' in inspect.signature(
        integrated_helpers.InstanceHelperMixin._wait_for_state_change
    ).parameters else {})


def reset_to_error():
    """Put the server in ERROR as a failed operation would."""
    def step(test, server):
        test.api.post_server_action(server['id'],
                                    {'os-resetState': {'state': 'error'}})
        return test._wait_for_state_change(server, 'ERROR',
                                           **NO_FAULT_WAIT)
    return step


def snapshot():
    return action({'createImage': {'name': 'crash-snapshot'}})


SCENARIOS = []


def add(*scenarios):
    """Append rows; names must stay unique, they name the tests."""
    known = {scenario.name for scenario in SCENARIOS}
    for scenario in scenarios:
        if scenario.name in known:
            raise ValueError('duplicate crash scenario %s' % scenario.name)
        known.add(scenario.name)
        SCENARIOS.append(scenario)


def by_name(name):
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


add(
    Scenario(
        name='build', module='build', boot=False, request=boot(),
        crash_in='spawn', at_crash='spawning',
        end=row('error', 'pending', guest='none',
                fault='build interrupted by nova-compute restart', before=(),
                request=('create', err('compute__do_build_and_run_instance'))),
        stock=row('error', 'pending', guest='none', before=(),
                  request=('create',
                           unfinished('compute__do_build_and_run_instance')))),
    Scenario(
        name='snapshot_uploading', module='image_upload', request=snapshot(),
        crash_in='snapshot', crash_kwargs={'after': True},
        at_crash='image_uploading',
        # The upload finished: the snapshot is whole, and its event says
        # Success on every release (nova 31's was still open).
        end=row('active', 'running', images=[('crash-snapshot', 'active')],
                request=('createImage', ok('compute_snapshot_instance'))),
        stock=row('active', 'running', images=[('crash-snapshot', 'active')],
                  request=('createImage', SNAPSHOT_STOCK))),
    Scenario(
        name='snapshot_started', module='snapshot',
        request=snapshot(), crash_in='snapshot',
        at_crash='image_snapshot',
        # The request's action says the snapshot did not complete
        # (SNAPSHOT_DIED). The empty crash-snapshot image stays only
        # because the glance fixture marks it active: real glance has it
        # queued, and the clean-up deletes it.
        end=row('active', 'running', images=[('crash-snapshot', 'active')],
                request=('createImage', SNAPSHOT_DIED)),
        stock=row('active', 'running', images=[('crash-snapshot', 'active')],
                  request=('createImage', SNAPSHOT_STOCK))),
    Scenario(
        name='delete', module='deleting', request=delete(),
        crash_in='destroy', at_crash='deleting',
        end=row('deleted', 'pending', guest='none',
                request=('delete', err('compute_terminate_instance'))),
        stock=row('deleted', 'pending', guest='none',
                  request=('delete',
                           unfinished('compute_terminate_instance')))),
    Scenario(
        name='reboot_soft', module='reboot',
        request=action({'reboot': {'type': 'SOFT'}}),
        crash_in='reboot', at_crash='reboot_started',
        end=row('active', 'running',
                request=('reboot', err('compute_reboot_instance'))),
        stock=row('active', 'running',
                  request=('reboot', unfinished('compute_reboot_instance')))),
    Scenario(
        name='reboot_soft_guest_down', module='reboot',
        request=action({'reboot': {'type': 'SOFT'}}),
        crash_in='reboot',
        crash_kwargs={'guest_state': power_state.SHUTDOWN},
        at_crash='reboot_started',
        end=row('active', 'running',
                request=('reboot', err('compute_reboot_instance')),
                after=(('reboot', ok('compute_reboot_instance')),)),
        stock=row('active', 'running',
                  request=('reboot',
                           unfinished('compute_reboot_instance') +
                           ok('compute_reboot_instance')))),
    Scenario(
        name='reboot_hard', module='reboot',
        request=action({'reboot': {'type': 'HARD'}}),
        crash_in='reboot', at_crash='reboot_started_hard',
        end=row('active', 'running',
                request=('reboot', err('compute_reboot_instance'))),
        stock=row('active', 'running',
                  request=('reboot', unfinished('compute_reboot_instance')))),
    Scenario(
        name='reboot_hard_error', module='reboot',
        setup=(reset_to_error(),),
        request=action({'reboot': {'type': 'HARD'}}),
        crash_in='reboot', at_crash='reboot_started_hard',
        end=row('active', 'running', before=(BUILT, RESET),
                request=('reboot', err('compute_reboot_instance'))),
        stock=row('error', 'running', task_state='reboot_started_hard',
                  before=(BUILT, RESET),
                  request=('reboot', unfinished('compute_reboot_instance')))),
    Scenario(
        name='stop', module='powering', request=action({'os-stop': None}),
        crash_in='power_off', at_crash='powering-off',
        end=row('stopped', 'shutdown',
                request=('stop', err('compute_stop_instance')),
                after=(('stop', ok('compute_stop_instance')),)),
        stock=row('stopped', 'shutdown',
                  request=('stop',
                           unfinished('compute_stop_instance') +
                           ok('compute_stop_instance')))),
    Scenario(
        name='stop_error', module='powering', setup=(reset_to_error(),),
        request=action({'os-stop': None}),
        crash_in='power_off', at_crash='powering-off',
        end=row('stopped', 'shutdown', before=(BUILT, RESET),
                request=('stop', err('compute_stop_instance')),
                after=(('stop', ok('compute_stop_instance')),)),
        stock=row('error', 'running', task_state='powering-off',
                  before=(BUILT, RESET),
                  request=('stop', unfinished('compute_stop_instance')))),
    Scenario(
        name='start', module='powering',
        setup=(action_and_wait({'os-stop': None}, 'SHUTOFF'),),
        request=action({'os-start': None}),
        crash_in='power_on', at_crash='powering-on',
        end=row('active', 'running',
                before=(BUILT, ('stop', ok('compute_stop_instance'))),
                request=('start', err('compute_start_instance')),
                after=(('start', ok('compute_start_instance')),)),
        stock=row('active', 'running',
                  before=(BUILT, ('stop', ok('compute_stop_instance'))),
                  request=('start',
                           unfinished('compute_start_instance') +
                           ok('compute_start_instance')))),
)


# Rebuild, pause/suspend, password and soft delete rows (rule modules
# rebuild, pause, password, soft_delete).

def rebuild():
    def request(test, server):
        test.api.post_server_action(server['id'], {'rebuild': {
            'imageRef': test.glance.auto_disk_config_enabled_image['id']}})
    return request


def change_password():
    """changePassword is an RPC call: send it from a thread that gives up
    soon, as the API caller does when nova-compute dies under it.
    """
    def request(test, server):
        test.flags(rpc_response_timeout=2)
        sender = threading.Thread(target=_ignore_errors, args=(
            test.api.post_server_action, server['id'],
            {'changePassword': {'adminPass': 'crash-password'}}))
        sender.start()
        test.addCleanup(sender.join, 30)
    return request


def _ignore_errors(func, *args):
    try:
        func(*args)
    except Exception:
        pass


def soft_delete_enabled():
    def step(test, server):
        test.flags(reclaim_instance_interval=3600)
        return server
    return step


def soft_delete_and_wait():
    def step(test, server):
        test.api.delete_server(server['id'])
        return test._wait_for_state_change(server, 'SOFT_DELETED')
    return step


add(
    Scenario(
        name='rebuild', module='rebuild', request=rebuild(),
        crash_in='spawn', at_crash='rebuild_spawning',
        end=row('error', 'pending', guest='none',
                fault='rebuild interrupted by nova-compute restart',
                request=('rebuild',
                         err('compute_rebuild_instance') +
                         ok('rebuild_server'))),
        stock=row('error', 'running', guest='none',
                  request=('rebuild',
                           unfinished('compute_rebuild_instance') +
                           ok('rebuild_server')))),
    Scenario(
        name='rebuild_error', module='rebuild', setup=(reset_to_error(),),
        request=rebuild(), crash_in='spawn', at_crash='rebuild_spawning',
        end=row('error', 'pending', guest='none',
                fault='rebuild interrupted by nova-compute restart',
                before=(BUILT, RESET),
                request=('rebuild',
                         err('compute_rebuild_instance') +
                         ok('rebuild_server'))),
        stock=row('error', 'running', guest='none',
                  task_state='rebuild_spawning',
                  before=(BUILT, RESET),
                  request=('rebuild',
                           unfinished('compute_rebuild_instance') +
                           ok('rebuild_server')))),
    Scenario(
        name='pause', module='pause_suspend', request=action({'pause': None}),
        crash_in='pause',
        crash_kwargs={'guest_state': power_state.PAUSED},
        at_crash='pausing',
        end=row('paused', 'paused',
                request=('pause', err('compute_pause_instance'))),
        stock=row('active', 'running', guest='paused', task_state='pausing',
                  request=('pause', unfinished('compute_pause_instance')))),
    Scenario(
        name='unpause', module='pause_suspend',
        setup=(action_and_wait({'pause': None}, 'PAUSED'),),
        request=action({'unpause': None}), crash_in='unpause',
        crash_kwargs={'guest_state': power_state.PAUSED},
        # The fake driver's unpause leaves the guest's power state alone.
        at_crash='unpausing',
        end=row('active', 'paused',
                before=(BUILT, ('pause', ok('compute_pause_instance'))),
                request=('unpause', err('compute_unpause_instance')),
                after=(('unpause', ok('compute_unpause_instance')),)),
        stock=row('active', 'paused',
                  before=(BUILT, ('pause', ok('compute_pause_instance'))),
                  request=('unpause',
                           unfinished('compute_unpause_instance') +
                           ok('compute_unpause_instance')))),
    Scenario(
        name='suspend', module='pause_suspend',
        request=action({'suspend': None}),
        crash_in='suspend',
        crash_kwargs={'guest_state': power_state.SUSPENDED},
        at_crash='suspending',
        end=row('suspended', 'suspended',
                request=('suspend', err('compute_suspend_instance'))),
        stock=row('active', 'running', guest='suspended',
                  task_state='suspending',
                  request=('suspend',
                           unfinished('compute_suspend_instance')))),
    Scenario(
        name='resume', module='pause_suspend',
        setup=(action_and_wait({'suspend': None}, 'SUSPENDED'),),
        request=action({'resume': None}), crash_in='resume',
        crash_kwargs={'after': True},
        at_crash='resuming',
        end=row('active', 'running',
                before=(BUILT, ('suspend', ok('compute_suspend_instance'))),
                request=('resume', err('compute_resume_instance'))),
        stock=row('suspended', 'running', task_state='resuming',
                  before=(BUILT, ('suspend', ok('compute_suspend_instance'))),
                  request=('resume', unfinished('compute_resume_instance')))),
    Scenario(
        name='change_password', module='password',
        request=change_password(), crash_in='set_admin_password',
        at_crash='updating_password',
        end=row('active', 'running',
                request=('changePassword', err('compute_set_admin_password'))),
        stock=row('active', 'running', task_state='updating_password',
                  request=('changePassword',
                           unfinished('compute_set_admin_password')))),
    Scenario(
        name='soft_delete', module='soft_delete',
        setup=(soft_delete_enabled(),), request=delete(),
        crash_in='soft_delete', at_crash='soft-deleting',
        end=row('soft-delete', 'running',
                request=('delete', err('compute_soft_delete_instance')),
                after=(('delete', ok('compute_soft_delete_instance')),)),
        stock=row('active', 'running', task_state='soft-deleting',
                  request=('delete',
                           unfinished('compute_soft_delete_instance')))),
    Scenario(
        name='restore', module='soft_delete',
        setup=(soft_delete_enabled(), soft_delete_and_wait()),
        request=action({'restore': None}), crash_in='restore',
        at_crash='restoring',
        end=row('active', 'running',
                before=(BUILT,
                        ('delete', ok('compute_soft_delete_instance')),),
                request=('restore', err('compute_restore_instance')),
                after=(('restore', ok('compute_restore_instance')),)),
        stock=row('soft-delete', 'running', task_state='restoring',
                  before=(BUILT,
                          ('delete', ok('compute_soft_delete_instance')),),
                  request=('restore',
                           unfinished('compute_restore_instance')))),
)


# Shelve, rescue, resize and live-migration rows (rule modules shelve,
# rescue, resize, migrating). One compute: resizes stay on the host.

def same_host_resize():
    def step(test, server):
        test.flags(allow_resize_to_same_host=True)
        return server
    return step


def no_auto_offload():
    def step(test, server):
        test.flags(shelved_offload_time=-1)
        return server
    return step


def resize():
    def request(test, server):
        test.api.post_server_action(server['id'], {'resize': {
            'flavorRef': test.api.get_flavors()[1]['id']}})
    return request


#: The action of a same-host resize that reached VERIFY_RESIZE.
RESIZED = ('resize', ok('cold_migrate') + ok('compute_finish_resize') +
           ok('compute_prep_resize') + ok('compute_resize_instance') +
           ok('conductor_migrate_server'))


def resize_and_wait():
    def step(test, server):
        resize()(test, server)
        return test._wait_for_state_change(server, 'VERIFY_RESIZE')
    return step


add(
    Scenario(
        name='shelve', module='shelve', request=action({'shelve': None}),
        crash_in='snapshot', crash_kwargs={'after': True},
        at_crash='shelving_image_uploading',
        # The snapshot finished uploading but nova-compute died before
        # recording it: the shelve is finished with that image and, as
        # shelved_offload_time is 0, offloaded.
        end=row('shelved_offloaded', 'shutdown', guest='none', host=None,
                images=[('SERVER-shelved', 'active')],
                request=('shelve', err('compute_shelve_instance'))),
        stock=row('active', 'running', guest='shutdown',
                  task_state='shelving_image_uploading',
                  images=[('SERVER-shelved', 'active')],
                  request=('shelve', unfinished('compute_shelve_instance')))),
    Scenario(
        name='shelve_offload', module='shelve_offload',
        setup=(no_auto_offload(),
               action_and_wait({'shelve': None}, 'SHELVED')),
        request=action({'shelveOffload': None}), crash_in='destroy',
        at_crash='shelving_offloading',
        end=row('shelved_offloaded', 'shutdown', guest='none', host=None,
                images=[('SERVER-shelved', 'active')],
                before=(BUILT, ('shelve', ok('compute_shelve_instance'))),
                request=('shelveOffload',
                         err('compute_shelve_offload_instance'))),
        stock=row('shelved', 'shutdown', task_state='shelving_offloading',
                  images=[('SERVER-shelved', 'active')],
                  before=(BUILT, ('shelve', ok('compute_shelve_instance'))),
                  request=('shelveOffload',
                           unfinished('compute_shelve_offload_instance')))),
    # _unshelve_instance spawns the offloaded server under SPAWNING; a
    # crash in the spawn leaves no guest, so the server is offloaded
    # again and can be unshelved, not an errored build.
    Scenario(
        name='unshelve_spawn', module='unshelve',
        setup=(action_and_wait({'shelve': None}, 'SHELVED_OFFLOADED'),),
        request=action({'unshelve': None}), crash_in='spawn',
        at_crash='spawning',
        end=row('shelved_offloaded', 'pending', guest='none', host=None,
                images=[('SERVER-shelved', 'active')],
                before=(BUILT, ('shelve', ok('compute_shelve_instance'))),
                request=('unshelve',
                         err('compute_unshelve_instance') +
                         ok('get_image_info') +
                         ok('schedule_instances'))),
        stock=row('error', 'shutdown', guest='none',
                  images=[('SERVER-shelved', 'active')],
                  before=(BUILT, ('shelve', ok('compute_shelve_instance'))),
                  request=('unshelve',
                           unfinished('compute_unshelve_instance') +
                           ok('get_image_info') +
                           ok('schedule_instances')))),
    Scenario(
        name='rescue', module='rescue', request=action({'rescue': {}}),
        crash_in='rescue', at_crash='rescuing',
        end=row('active', 'running',
                request=('rescue', err('compute_rescue_instance'))),
        stock=row('active', 'running', guest='shutdown', task_state='rescuing',
                  request=('rescue', unfinished('compute_rescue_instance')))),
    Scenario(
        name='unrescue', module='rescue',
        setup=(action_and_wait({'rescue': {}}, 'RESCUE'),),
        request=action({'unrescue': None}), crash_in='unrescue',
        at_crash='unrescuing',
        end=row('active', 'running',
                before=(BUILT, ('rescue', ok('compute_rescue_instance'))),
                request=('unrescue', err('compute_unrescue_instance'))),
        stock=row('rescued', 'shutdown', task_state='unrescuing',
                  before=(BUILT, ('rescue', ok('compute_rescue_instance'))),
                  request=('unrescue',
                           unfinished('compute_unrescue_instance')))),
    Scenario(
        # Stock ends alike but leaves the migration, its context and its
        # allocations behind (bug 1836369); see test_crash_restart_more_b.
        name='resize_migrating', module='resize',
        setup=(same_host_resize(),), request=resize(),
        crash_in='migrate_disk_and_power_off', at_crash='resize_migrating',
        end=row('active', 'running',
                request=('resize',
                         ok('cold_migrate') +
                         ok('compute_prep_resize') +
                         err('compute_resize_instance') +
                         ok('conductor_migrate_server'))),
        stock=row('active', 'running',
                  request=('resize',
                           ok('cold_migrate') +
                           ok('compute_prep_resize') +
                           unfinished('compute_resize_instance') +
                           ok('conductor_migrate_server')))),
    Scenario(
        name='resize_finish', module='resize', setup=(same_host_resize(),),
        request=resize(), crash_in='finish_migration',
        at_crash='resize_finish',
        end=row('active', 'running',
                request=('resize',
                         ok('cold_migrate') +
                         err('compute_finish_resize') +
                         ok('compute_prep_resize') +
                         ok('compute_resize_instance') +
                         ok('conductor_migrate_server'))),
        stock=row('active', 'running', task_state='resize_finish',
                  flavor='m1.small',
                  request=('resize',
                           ok('cold_migrate') +
                           unfinished('compute_finish_resize') +
                           ok('compute_prep_resize') +
                           ok('compute_resize_instance') +
                           ok('conductor_migrate_server')))),
    Scenario(
        name='resize_revert', module='resize',
        setup=(same_host_resize(), resize_and_wait()),
        request=action({'revertResize': None}),
        crash_in='finish_revert_migration', at_crash='resize_reverting',
        end=row('active', 'running',
                before=(BUILT, RESIZED),
                request=('revertResize',
                         err('compute_finish_revert_resize') +
                         ok('compute_revert_resize'))),
        stock=row('resized', 'running', guest='none',
                  task_state='resize_reverting',
                  before=(BUILT, RESIZED),
                  request=('revertResize',
                           unfinished('compute_finish_revert_resize') +
                           ok('compute_revert_resize')))),
)
