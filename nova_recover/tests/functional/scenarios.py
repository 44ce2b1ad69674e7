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
without it (recorded, so a change in either shows up).
"""

import dataclasses
import threading
import typing

from nova.compute import power_state


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

    def differences(self, row, expected):
        """{field: (expected, actual)} where row does not match."""
        return {key: (value, row.get(key))
                for key, value in sorted(expected.items())
                if row.get(key) != value}


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


def reset_to_error():
    """Put the server in ERROR as a failed operation would."""
    def step(test, server):
        test.api.post_server_action(server['id'],
                                    {'os-resetState': {'state': 'error'}})
        return test._wait_for_state_change(server, 'ERROR',
                                           wait_for_fault_key=False)
    return step


def snapshot():
    return action({'createImage': {'name': 'crash-snapshot'}})


RUNNING = {'vm_state': 'active', 'task_state': None, 'power_state': 'running'}
STOPPED = {'vm_state': 'stopped', 'task_state': None,
           'power_state': 'shutdown'}
GONE = {'vm_state': 'deleted', 'task_state': None}
# Stock ends that match ours, fault included: stock adds none either.
STOCK_RUNNING = dict(RUNNING, fault=None)
STOCK_STOPPED = dict(STOPPED, fault=None)

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
        end={'vm_state': 'error', 'task_state': None,
             'fault': 'build interrupted by nova-compute restart'},
        stock={'vm_state': 'error', 'task_state': None,
               'power_state': 'pending', 'fault': None}),
    Scenario(
        name='snapshot_uploading', module='image', request=snapshot(),
        crash_in='snapshot', crash_kwargs={'after': True},
        at_crash='image_uploading', end=RUNNING, stock=STOCK_RUNNING),
    Scenario(
        name='snapshot_started', module='snapshot_pending',
        request=snapshot(), crash_in='snapshot',
        at_crash='image_snapshot', end=RUNNING, stock=STOCK_RUNNING),
    Scenario(
        name='delete', module='deleting', request=delete(),
        crash_in='destroy', at_crash='deleting', end=GONE, stock=GONE),
    Scenario(
        name='reboot_soft', module='reboot',
        request=action({'reboot': {'type': 'SOFT'}}),
        crash_in='reboot', at_crash='reboot_started', end=RUNNING,
        stock=STOCK_RUNNING),
    Scenario(
        name='reboot_soft_guest_down', module='reboot',
        request=action({'reboot': {'type': 'SOFT'}}),
        crash_in='reboot',
        crash_kwargs={'guest_state': power_state.SHUTDOWN},
        at_crash='reboot_started', end=RUNNING, stock=STOCK_RUNNING),
    Scenario(
        name='reboot_hard', module='reboot',
        request=action({'reboot': {'type': 'HARD'}}),
        crash_in='reboot', at_crash='reboot_started_hard', end=RUNNING,
        stock=STOCK_RUNNING),
    Scenario(
        name='reboot_hard_error', module='reboot',
        setup=(reset_to_error(),),
        request=action({'reboot': {'type': 'HARD'}}),
        crash_in='reboot', at_crash='reboot_started_hard', end=RUNNING,
        stock={'vm_state': 'error',
               'task_state': 'reboot_started_hard',
               'power_state': 'running', 'fault': None}),
    Scenario(
        name='stop', module='powering', request=action({'os-stop': None}),
        crash_in='power_off', at_crash='powering-off', end=STOPPED,
        stock=STOCK_STOPPED),
    Scenario(
        name='stop_error', module='powering', setup=(reset_to_error(),),
        request=action({'os-stop': None}),
        crash_in='power_off', at_crash='powering-off', end=STOPPED,
        stock={'vm_state': 'error', 'task_state': 'powering-off',
               'power_state': 'running', 'fault': None}),
    Scenario(
        name='start', module='powering',
        setup=(action_and_wait({'os-stop': None}, 'SHUTOFF'),),
        request=action({'os-start': None}),
        crash_in='power_on', at_crash='powering-on', end=RUNNING,
        stock=STOCK_RUNNING),
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


SOFT_DELETED = {'vm_state': 'soft-delete', 'task_state': None}

add(
    Scenario(
        name='rebuild', module='rebuild', request=rebuild(),
        crash_in='spawn', at_crash='rebuild_spawning',
        end={'vm_state': 'error', 'task_state': None,
             'fault': 'rebuild interrupted by nova-compute restart'},
        stock={'vm_state': 'error', 'task_state': None, 'fault': None}),
    Scenario(
        name='rebuild_error', module='rebuild', setup=(reset_to_error(),),
        request=rebuild(), crash_in='spawn', at_crash='rebuild_spawning',
        end={'vm_state': 'error', 'task_state': None,
             'fault': 'rebuild interrupted by nova-compute restart'},
        stock={'vm_state': 'error', 'task_state': 'rebuild_spawning',
               'fault': None}),
    Scenario(
        name='pause', module='pause', request=action({'pause': None}),
        crash_in='pause',
        crash_kwargs={'guest_state': power_state.PAUSED},
        at_crash='pausing',
        end={'vm_state': 'paused', 'task_state': None,
             'power_state': 'paused'},
        stock={'vm_state': 'active', 'task_state': 'pausing'}),
    Scenario(
        name='unpause', module='pause',
        setup=(action_and_wait({'pause': None}, 'PAUSED'),),
        request=action({'unpause': None}), crash_in='unpause',
        crash_kwargs={'guest_state': power_state.PAUSED},
        # The fake driver's unpause leaves the guest's power state alone.
        at_crash='unpausing', end={'vm_state': 'active', 'task_state': None},
        stock={}),
    Scenario(
        name='suspend', module='pause', request=action({'suspend': None}),
        crash_in='suspend',
        crash_kwargs={'guest_state': power_state.SUSPENDED},
        at_crash='suspending',
        end={'vm_state': 'suspended', 'task_state': None,
             'power_state': 'suspended'},
        stock={'vm_state': 'active', 'task_state': 'suspending'}),
    Scenario(
        name='resume', module='pause',
        setup=(action_and_wait({'suspend': None}, 'SUSPENDED'),),
        request=action({'resume': None}), crash_in='resume',
        crash_kwargs={'after': True},
        at_crash='resuming', end=RUNNING,
        stock={'vm_state': 'suspended', 'task_state': 'resuming'}),
    Scenario(
        name='change_password', module='password',
        request=change_password(), crash_in='set_admin_password',
        at_crash='updating_password', end=RUNNING,
        stock={'vm_state': 'active', 'task_state': 'updating_password'}),
    Scenario(
        name='soft_delete', module='soft_delete',
        setup=(soft_delete_enabled(),), request=delete(),
        crash_in='soft_delete', at_crash='soft-deleting',
        end=SOFT_DELETED,
        stock={'vm_state': 'active', 'task_state': 'soft-deleting'}),
    Scenario(
        name='restore', module='soft_delete',
        setup=(soft_delete_enabled(), soft_delete_and_wait()),
        request=action({'restore': None}), crash_in='restore',
        at_crash='restoring', end=RUNNING,
        stock={'vm_state': 'soft-delete', 'task_state': 'restoring'}),
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


def resize_and_wait():
    def step(test, server):
        resize()(test, server)
        return test._wait_for_state_change(server, 'VERIFY_RESIZE')
    return step


add(
    Scenario(
        name='shelve', module='shelve', request=action({'shelve': None}),
        crash_in='snapshot', crash_kwargs={'after': True},
        at_crash='shelving_image_uploading', end=STOPPED,
        stock={'vm_state': 'active',
               'task_state': 'shelving_image_uploading'}),
    Scenario(
        name='shelve_offload', module='shelve',
        setup=(no_auto_offload(),
               action_and_wait({'shelve': None}, 'SHELVED')),
        request=action({'shelveOffload': None}), crash_in='destroy',
        at_crash='shelving_offloading',
        end={'vm_state': 'shelved_offloaded', 'task_state': None},
        stock={'vm_state': 'shelved', 'task_state': 'shelving_offloading'}),
    # _unshelve_instance spawns the offloaded server under SPAWNING; a
    # crash in the spawn leaves no guest, so the server is offloaded
    # again and can be unshelved, not an errored build.
    Scenario(
        name='unshelve_spawn', module='shelve',
        setup=(action_and_wait({'shelve': None}, 'SHELVED_OFFLOADED'),),
        request=action({'unshelve': None}), crash_in='spawn',
        at_crash='spawning',
        end={'vm_state': 'shelved_offloaded', 'task_state': None,
             'power_state': 'pending', 'fault': None},
        stock={'vm_state': 'error', 'task_state': None}),
    Scenario(
        name='rescue', module='rescue', request=action({'rescue': {}}),
        crash_in='rescue', at_crash='rescuing', end=RUNNING,
        stock={'vm_state': 'active', 'task_state': 'rescuing'}),
    Scenario(
        name='unrescue', module='rescue',
        setup=(action_and_wait({'rescue': {}}, 'RESCUE'),),
        request=action({'unrescue': None}), crash_in='unrescue',
        at_crash='unrescuing', end=RUNNING,
        stock={'vm_state': 'rescued', 'task_state': 'unrescuing'}),
    Scenario(
        # Stock ends alike but leaves the migration, its context and its
        # allocations behind (bug 1836369); see test_crash_restart_more_b.
        name='resize_migrating', module='resize',
        setup=(same_host_resize(),), request=resize(),
        crash_in='migrate_disk_and_power_off', at_crash='resize_migrating',
        end=RUNNING, stock=RUNNING),
    Scenario(
        name='resize_finish', module='resize', setup=(same_host_resize(),),
        request=resize(), crash_in='finish_migration',
        at_crash='resize_finish', end=RUNNING,
        stock={'vm_state': 'active', 'task_state': 'resize_finish'}),
    Scenario(
        name='resize_revert', module='resize',
        setup=(same_host_resize(), resize_and_wait()),
        request=action({'revertResize': None}),
        crash_in='finish_revert_migration', at_crash='resize_reverting',
        end=RUNNING,
        stock={'vm_state': 'resized', 'task_state': 'resize_reverting'}),
)
