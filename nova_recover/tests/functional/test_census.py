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

"""Start-up census: every realistic crash leftover, one start-up, no stuck.

Each row is an instance in the database of a real ComputeManager (fake
driver, real objects, nova's sqlite) with a task_state, one of the
vm_states that the API or compute allow for it (coverage.VM_STATES) and
a guest power state on the fake hypervisor. For a task_state the API
writes before its cast there are two rows: "reached" (the request's
compute_<method> event exists on this host) and "queued" (only the API's
instance action). Start-up then runs _init_instance over the host's
instances as init_host does, and every row is classed:

- recovered-to-<vm_state>: task_state None, and vm_state and power_state
  agree with the guest;
- errored-with-fault: ERROR with an instance fault saying why;
- deleted: the delete the user asked for finished;
- left-queued: a queued row, byte for byte as it was;
- STILL-STUCK, INCONSISTENT, QUEUED-TOUCHED, EXCEPTION: failures.

Run the per-state tests for the verdicts; CensusSummaryTestCase prints
the counts (as the test detail 'census', in the log, and into the file
named by $NOVA_RECOVER_CENSUS_OUT when set) for nova-recover and for
stock nova.
"""

import collections
import functools
import importlib
import inspect
import json
import os
import types

from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_utils import uuidutils
import sqlalchemy as sa
import testscenarios
from testtools import content

from nova.compute import instance_actions
from nova.compute import manager as compute_manager
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova.db.main import api as db
from nova.db.main import models
from nova import exception
from nova.network import model as network_model
from nova import objects
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import fixtures as func_fixtures
from nova.virt import fake

import nova_recover
from nova_recover import coverage
from nova_recover.startup_recovery import base as recovery_base
from nova_recover.startup_recovery import evidence
from nova_recover.startup_recovery import state as recovery_state
from nova_recover.tests import fixtures as recover_fixtures
from nova_recover.tests.functional import end_states
from nova_recover.tests import overlay_fixtures

LOG = logging.getLogger(__name__)

load_tests = testscenarios.load_tests_apply_scenarios

# States some of whose reached rows still end badly: a rule not landed
# yet, or a finding its owner has to fix. Each entry is an expected
# failure, and turns into an unexpected success (a failure) once all its
# rows pass, so this list only ever shrinks; the lead empties it.
EXPECTED_STUCK = {
    task_states.IMAGE_SNAPSHOT:
        'by design: a SUSPENDED instance whose cold snapshot died stays '
        'SUSPENDED over a guest that shows shut off, because that is how '
        'libvirt shows a suspended (managed-saved) guest and starting it '
        'as STOPPED would drop its saved memory',
}

# States whose queued rows may still be touched, as expected failures like
# EXPECTED_STUCK. Empty since evidence.queued() reads the evidence; an
# entry is only for a tree whose evidence.py is a stub again.
QUEUED_EXPECTED_TOUCHED = {}

HOST = 'census-host'

# What the guest was doing when the request arrived, by vm_state.
SOURCE_POWER = {
    vm_states.ACTIVE: (power_state.RUNNING,),
    vm_states.BUILDING: (power_state.NOSTATE,),
    vm_states.STOPPED: (power_state.SHUTDOWN,),
    vm_states.PAUSED: (power_state.PAUSED,),
    vm_states.SUSPENDED: (power_state.SUSPENDED,),
    vm_states.RESCUED: (power_state.RUNNING,),
    vm_states.RESIZED: (power_state.RUNNING,),
    vm_states.SHELVED: (power_state.SHUTDOWN,),
    vm_states.SHELVED_OFFLOADED: (power_state.NOSTATE,),
    vm_states.SOFT_DELETED: (power_state.SHUTDOWN,),
    vm_states.ERROR: (power_state.RUNNING, power_state.SHUTDOWN),
}

# Where the operation takes the guest, so where a crash may leave it.
_REBOOT = (power_state.RUNNING, power_state.SHUTDOWN)
TARGET_POWER = {
    task_states.SCHEDULING: (),
    task_states.BLOCK_DEVICE_MAPPING: (),
    task_states.NETWORKING: (),
    task_states.SPAWNING: (power_state.RUNNING,),
    # A cold snapshot saves the guest's memory and shuts it off.
    task_states.IMAGE_SNAPSHOT: (power_state.SHUTDOWN,),
    task_states.IMAGE_PENDING_UPLOAD: (),
    task_states.IMAGE_UPLOADING: (),
    task_states.IMAGE_SNAPSHOT_PENDING: (),
    task_states.IMAGE_BACKUP: (),
    task_states.UPDATING_PASSWORD: (),
    task_states.RESIZE_PREP: (),
    task_states.RESIZE_MIGRATING: (power_state.SHUTDOWN,),
    task_states.RESIZE_MIGRATED: (power_state.SHUTDOWN,
                                  power_state.NOSTATE),
    task_states.RESIZE_FINISH: (power_state.RUNNING, power_state.NOSTATE),
    task_states.RESIZE_REVERTING: (power_state.SHUTDOWN,),
    task_states.RESIZE_CONFIRMING: (),
    task_states.REBOOTING: _REBOOT,
    task_states.REBOOT_PENDING: _REBOOT,
    task_states.REBOOT_STARTED: _REBOOT,
    task_states.REBOOTING_HARD: _REBOOT,
    task_states.REBOOT_PENDING_HARD: _REBOOT,
    task_states.REBOOT_STARTED_HARD: _REBOOT,
    task_states.PAUSING: (power_state.PAUSED,),
    task_states.UNPAUSING: (power_state.RUNNING,),
    task_states.SUSPENDING: (power_state.SUSPENDED,),
    task_states.RESUMING: (power_state.RUNNING,),
    task_states.POWERING_OFF: (power_state.SHUTDOWN,),
    task_states.POWERING_ON: (power_state.RUNNING,),
    task_states.RESCUING: (power_state.SHUTDOWN, power_state.RUNNING),
    task_states.UNRESCUING: (power_state.SHUTDOWN,),
    task_states.REBUILDING: (),
    task_states.REBUILD_BLOCK_DEVICE_MAPPING: (power_state.NOSTATE,),
    task_states.REBUILD_SPAWNING: (power_state.NOSTATE,
                                   power_state.RUNNING),
    # The source guest is paused for the switch-over, and gone after it.
    task_states.MIGRATING: (power_state.PAUSED, power_state.NOSTATE),
    task_states.DELETING: (power_state.SHUTDOWN, power_state.NOSTATE),
    task_states.SOFT_DELETING: (power_state.SHUTDOWN,),
    task_states.RESTORING: (power_state.RUNNING,),
    task_states.SHELVING: (power_state.SHUTDOWN,),
    task_states.SHELVING_IMAGE_PENDING_UPLOAD: (power_state.SHUTDOWN,),
    task_states.SHELVING_IMAGE_UPLOADING: (power_state.SHUTDOWN,),
    task_states.SHELVING_OFFLOADING: (power_state.NOSTATE,),
    task_states.UNSHELVING: (power_state.RUNNING,),
}

# Guest power states a settled vm_state may sit on.
AGREES = {
    vm_states.ACTIVE: {power_state.RUNNING},
    vm_states.STOPPED: {power_state.SHUTDOWN, power_state.NOSTATE,
                        power_state.CRASHED},
    vm_states.PAUSED: {power_state.PAUSED},
    vm_states.SUSPENDED: {power_state.SUSPENDED},
    vm_states.RESCUED: {power_state.RUNNING},
    vm_states.RESIZED: {power_state.RUNNING, power_state.SHUTDOWN},
    vm_states.SHELVED: {power_state.SHUTDOWN},
    vm_states.SHELVED_OFFLOADED: {power_state.NOSTATE},
    vm_states.SOFT_DELETED: {power_state.SHUTDOWN, power_state.NOSTATE},
}

# The resize steps that come after finish_resize switched the flavor.
NEW_FLAVOR_STATES = frozenset([
    task_states.RESIZE_FINISH, task_states.RESIZE_REVERTING,
    task_states.RESIZE_CONFIRMING])

RESIZE_STATES = frozenset([
    task_states.RESIZE_PREP, task_states.RESIZE_MIGRATING,
    task_states.RESIZE_MIGRATED, task_states.RESIZE_FINISH,
    task_states.RESIZE_REVERTING, task_states.RESIZE_CONFIRMING])
MIGRATION_STATUS = {
    task_states.RESIZE_PREP: 'pre-migrating',
    task_states.RESIZE_MIGRATING: 'migrating',
    task_states.RESIZE_MIGRATED: 'post-migrating',
    task_states.RESIZE_FINISH: 'post-migrating',
    task_states.RESIZE_REVERTING: 'reverting',
    task_states.RESIZE_CONFIRMING: 'confirming',
    task_states.MIGRATING: 'running',
}


class Row(collections.namedtuple(
        'Row', ['task_state', 'vm_state', 'guest', 'stood'])):
    """One census instance; stood is where its request stood."""

    @property
    def queued(self):
        """Whether the request never reached this host.

        A lost row starts as a queued one: only the API's action exists.
        """
        return self.stood != end_states.REACHED


GOOD = ('recovered-to-', 'errored-with-fault', 'deleted', 'left-queued',
        'stayed-error')


# The image an operation had the API create before its cast, and the
# status the upload left it in when nova-compute died.
UPLOADS = {
    task_states.IMAGE_SNAPSHOT_PENDING: ('snapshot', 'queued'),
    task_states.IMAGE_SNAPSHOT: ('snapshot', 'queued'),
    task_states.IMAGE_PENDING_UPLOAD: ('snapshot', 'queued'),
    task_states.IMAGE_UPLOADING: ('snapshot', 'saving'),
    task_states.IMAGE_BACKUP: ('backup', 'queued'),
    task_states.SHELVING: ('snapshot', 'queued'),
    task_states.SHELVING_IMAGE_PENDING_UPLOAD: ('snapshot', 'queued'),
    task_states.SHELVING_IMAGE_UPLOADING: ('snapshot', 'saving'),
}
PROJECT = 'census-project'

# Driver calls start-up may make, recorded per instance for the table.
RECORDED = ('reboot', 'power_on', 'power_off', 'destroy', 'pause',
            'unpause', 'suspend', 'resume', 'rescue', 'unrescue', 'spawn',
            'snapshot', 'soft_delete', 'restore', 'set_admin_password',
            'finish_revert_migration', 'migrate_disk_and_power_off',
            'finish_migration', 'confirm_migration', 'cleanup',
            'resume_state_on_host_boot', 'plug_vifs',
            'live_migration_abort', 'rollback_live_migration_at_destination')


def _call_label(name, arguments):
    """A driver call as the table shows it, with the argument that
    tells the owner's request apart (clean or hard, disks kept or not).
    """
    if name == 'power_off':
        return 'power_off(%s)' % ('clean' if arguments.get('timeout')
                                  else 'hard')
    if name == 'reboot':
        return 'reboot(%s)' % arguments.get('reboot_type')
    if name in ('destroy', 'cleanup'):
        keep = arguments.get('destroy_disks', True) is False
        return '%s(%s)' % (name, 'keep disks' if keep else 'disks')
    return name


def _queued_possible(task_state, vm_state):
    """Whether evidence can take this row's request as still queued."""
    table = getattr(evidence, 'API_SET', None)
    if table is None:
        table = coverage.API_SET
    return task_state in table and vm_state != vm_states.BUILDING


def rows(task_state):
    """The realistic rows of one task state."""
    found = []
    for vm_state in coverage.VM_STATES.get(task_state, ()):
        guests = []
        for guest in (SOURCE_POWER[vm_state] +
                      TARGET_POWER.get(task_state, ())):
            if guest not in guests:
                guests.append(guest)
        for guest in guests:
            found.append(Row(task_state, vm_state, guest,
                             end_states.REACHED))
            if _queued_possible(task_state, vm_state):
                found.append(Row(task_state, vm_state, guest,
                                 end_states.QUEUED))
                if guest in SOURCE_POWER[vm_state]:
                    # A request that never came left the guest as it was.
                    found.append(Row(task_state, vm_state, guest,
                                     end_states.LOST))
    return found


def all_rows():
    return [row for state in coverage.installed_task_states()
            for row in rows(state)]


# The instance action that the request behind a compute-set state
# recorded (evidence.API_SET names it for the API-set ones): a re-run at
# start-up attaches its event to it, as in a real deployment.
COMPUTE_SET_ACTIONS = {
    task_states.SCHEDULING: instance_actions.CREATE,
    task_states.BLOCK_DEVICE_MAPPING: instance_actions.CREATE,
    task_states.NETWORKING: instance_actions.CREATE,
    task_states.SPAWNING: instance_actions.CREATE,
    task_states.DELETING: instance_actions.DELETE,
    task_states.IMAGE_SNAPSHOT: instance_actions.CREATE_IMAGE,
    task_states.IMAGE_PENDING_UPLOAD: instance_actions.CREATE_IMAGE,
    task_states.IMAGE_UPLOADING: instance_actions.CREATE_IMAGE,
    task_states.REBOOT_PENDING: instance_actions.REBOOT,
    task_states.REBOOT_PENDING_HARD: instance_actions.REBOOT,
    task_states.REBOOT_STARTED: instance_actions.REBOOT,
    task_states.REBOOT_STARTED_HARD: instance_actions.REBOOT,
    task_states.REBUILD_BLOCK_DEVICE_MAPPING: instance_actions.REBUILD,
    task_states.REBUILD_SPAWNING: instance_actions.REBUILD,
    task_states.SHELVING_IMAGE_PENDING_UPLOAD: instance_actions.SHELVE,
    task_states.SHELVING_IMAGE_UPLOADING: instance_actions.SHELVE,
    task_states.RESIZE_MIGRATING: instance_actions.RESIZE,
    task_states.RESIZE_MIGRATED: instance_actions.RESIZE,
    task_states.RESIZE_FINISH: instance_actions.RESIZE,
    task_states.RESIZE_CONFIRMING: instance_actions.CONFIRM_RESIZE,
}


def _operation(task_state):
    """(instance action, compute method) of the request behind a state."""
    table = getattr(evidence, 'API_SET', {})
    if isinstance(table, dict) and task_state in table:
        op = table[task_state]
        return op.actions[0], op.methods[0]
    methods = getattr(evidence, 'REACHED', {}).get(task_state, ())
    return (COMPUTE_SET_ACTIONS.get(task_state),
            methods[0] if methods else None)


class CensusDriver(fake.FakeDriver):
    """The fake driver, with guests that change state as real ones do."""

    def power_off(self, instance, timeout=0, retry_interval=0):
        # libvirt takes a guest that is gone as already shut off.
        if instance.uuid in self.instances:
            super().power_off(instance, timeout, retry_interval)

    def _set(self, instance, state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotFound(
                instance_id=instance.uuid)
        self.instances[instance.uuid].state = state

    def pause(self, instance):
        self._set(instance, power_state.PAUSED)

    def unpause(self, instance):
        self._set(instance, power_state.RUNNING)

    def suspend(self, context, instance):
        self._set(instance, power_state.SUSPENDED)

    def resume(self, context, instance, network_info,
               block_device_info=None, share_info=None):
        self._set(instance, power_state.RUNNING)

    def rescue(self, context, instance, network_info, image_meta,
               rescue_password, block_device_info, share_info):
        self._set(instance, power_state.RUNNING)

    def soft_delete(self, instance):
        self._set(instance, power_state.SHUTDOWN)

    def restore(self, instance):
        self._set(instance, power_state.RUNNING)


class _Broken(Exception):
    pass


FAILING = ('reboot', 'power_on', 'power_off', 'destroy', 'pause',
           'unpause', 'suspend', 'resume', 'rescue', 'unrescue', 'spawn',
           'snapshot', 'soft_delete', 'restore', 'set_admin_password',
           'finish_revert_migration', 'migrate_disk_and_power_off',
           'finish_migration', 'confirm_migration', 'cleanup',
           'resume_state_on_host_boot', 'plug_vifs', 'live_migration_abort')


class FailingCensusDriver(CensusDriver):
    """Every guest operation raises, as a broken hypervisor would."""


def _fail(name):
    def method(self, *args, **kwargs):
        raise _Broken('census: driver.%s failed' % name)
    method.__name__ = name
    return method


for _name in FAILING:
    setattr(FailingCensusDriver, _name, _fail(_name))


@db.pick_context_manager_reader
def _raw_state(context, uuid):
    """Every column of the instance and its extra, and its fault count."""
    session = context.session
    state = {}
    for table, column in ((models.Instance.__table__, 'uuid'),
                          (models.InstanceExtra.__table__, 'instance_uuid')):
        row = session.execute(sa.select(table).where(
            table.c[column] == uuid)).mappings().first()
        prefix = '' if table.name == 'instances' else table.name + '.'
        state.update((prefix + k, v) for k, v in (row or {}).items())
    fault = models.InstanceFault.__table__
    state['faults'] = session.execute(
        sa.select(sa.func.count()).select_from(fault).where(
            fault.c.instance_uuid == uuid)).scalar()
    return state


class CensusBase(test.TestCase):
    """A compute host with a database full of crash leftovers."""

    USES_DB_SELF = False
    DRIVER = CensusDriver
    STOCK = False

    def setUp(self):
        super().setUp()
        if not self.STOCK:
            self.useFixture(overlay_fixtures.Overlay())
        elif overlay_fixtures.native():
            self.skipTest('stock nova cannot be measured against the '
                          'patched tree (NOVA_RECOVER_NATIVE=1)')
        else:
            self.assertFalse(nova_recover.is_installed())
        self.shape = self.useFixture(recover_fixtures.ProductionShape(
            threads=overlay_fixtures.startup_threads()))
        self.useFixture(nova_fixtures.NeutronFixture(self))
        self.glance = self.useFixture(nova_fixtures.GlanceFixture(self))
        self.useFixture(func_fixtures.PlacementFixture())
        self.useFixture(nova_fixtures.CinderFixture(self))
        self.useFixture(nova_fixtures.SpawnIsSynchronousFixture())
        self.flags(host=HOST)
        self.compute = compute_manager.ComputeManager(
            compute_driver='fake.FakeDriver')
        # nova only loads drivers from its own tree.
        self.compute.driver = self.DRIVER(self.compute.virtapi)
        self.compute.rt.driver = self.compute.driver
        self.calls = collections.defaultdict(list)
        self._record_calls(self.compute.driver)
        self.images = collections.defaultdict(list)
        self.addCleanup(self._stop_sweep)
        self.context = nova_context.get_admin_context()
        self.flavor = objects.Flavor(
            id=1, flavorid='census', name='census', memory_mb=512, vcpus=1,
            root_gb=1, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
            vcpu_weight=None, disabled=False, is_public=True,
            description=None, extra_specs={})
        # What a resize moves to: a flavor of its own, so that the table
        # shows which of the two a recovered server ends with.
        self.new_flavor = objects.Flavor(
            id=2, flavorid='census-new', name='census-new', memory_mb=1024,
            vcpus=2, root_gb=1, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
            vcpu_weight=None, disabled=False, is_public=True,
            description=None, extra_specs={})

    def _record_calls(self, driver):
        """Note every guest operation per instance, for the table."""
        for name in RECORDED:
            method = getattr(driver, name, None)
            if method is not None:
                setattr(driver, name, self._recording(name, method))

    def _recording(self, name, method):
        signature = inspect.signature(method)

        def record(*args, **kwargs):
            arguments = signature.bind_partial(*args, **kwargs).arguments
            instance = arguments.get('instance')
            if instance is not None:
                self.calls[instance.uuid].append(
                    _call_label(name, arguments))
            return method(*args, **kwargs)
        return record

    def _stop_sweep(self):
        # A queued row starts the deferred sweep; a stopped service ends it.
        self.compute.instance_events.cancel_all_events()
        # Looked up, not state.of: stock nova's manager has none to end.
        recovery = getattr(self.compute, recovery_state.ATTRIBUTE, None)
        watcher = getattr(recovery, 'sweep', None)
        if watcher is not None:
            watcher.wakeup.set()

    # -- building the rows --------------------------------------------

    def _create(self, row):
        uuid = uuidutils.generate_uuid()
        source = SOURCE_POWER[row.vm_state][0]
        instance = objects.Instance(
            self.context, uuid=uuid, host=HOST, node='fakenode', compute_id=1,
            project_id=PROJECT,
            user_id=self.context.user_id or 'census-user',
            display_name='census-%s-%s' % (row.task_state, row.vm_state),
            vm_state=row.vm_state, task_state=row.task_state,
            power_state=source, flavor=self.flavor,
            old_flavor=None, new_flavor=None,
            instance_type_id=self.flavor.id,
            memory_mb=self.flavor.memory_mb, vcpus=self.flavor.vcpus,
            root_gb=1, ephemeral_gb=0,
            image_ref=nova_fixtures.GlanceFixture.image1['id'],
            root_device_name='/dev/vda', launched_at=None,
            system_metadata={}, metadata={},
            info_cache=objects.InstanceInfoCache(
                network_info=network_model.NetworkInfo()))
        if row.vm_state != vm_states.BUILDING:
            instance.launched_at = timeutils.utcnow()
        if row.vm_state in (vm_states.SHELVED, vm_states.SHELVED_OFFLOADED):
            instance.system_metadata.update({
                'shelved_at': '2026-01-01T00:00:00.000000',
                'shelved_image_id': self._image(uuid, 'shelved', 'active'),
                'shelved_host': HOST})
        if row.task_state in UPLOADS:
            self._image(uuid, *UPLOADS[row.task_state])
        if row.vm_state == vm_states.RESIZED:
            instance.system_metadata['old_vm_state'] = vm_states.ACTIVE
        instance.create()
        if row.task_state in MIGRATION_STATUS:
            self._migrate(instance, row)
        if row.guest != power_state.NOSTATE:
            self.compute.driver.instances[uuid] = fake.FakeInstance(
                instance.name, row.guest, uuid)
        action, method = _operation(row.task_state)
        if (row.task_state == task_states.SPAWNING and
                row.vm_state == vm_states.SHELVED_OFFLOADED):
            # An unshelve spawns under its own action.
            action, method = instance_actions.UNSHELVE, 'unshelve_instance'
        if action is not None:
            objects.InstanceAction.action_start(
                self.context, uuid, action, want_result=False)
            if not row.queued and method is not None:
                objects.InstanceActionEvent.event_start(
                    self.context, uuid, evidence.PREFIX + method,
                    want_result=False, host=HOST)
        return uuid

    def _image(self, uuid, kind, status):
        """An image of the instance in glance, as its request left it."""
        image_type = 'backup' if kind == 'backup' else 'snapshot'
        image_id = self.glance.create(None, {
            'name': 'census-%s-%s' % (kind, uuid[:8]), 'status': status,
            'properties': {'instance_uuid': uuid, 'image_type': image_type,
                           'owner': PROJECT}})['id']
        self.images[uuid].append((kind, image_id))
        return image_id

    def _migrate(self, instance, row):
        live = row.task_state == task_states.MIGRATING
        migration = objects.Migration(
            self.context, instance_uuid=instance.uuid,
            source_compute=HOST, dest_compute='census-dest',
            source_node='fakenode', dest_node='census-dest-node',
            dest_compute_id=2,
            dest_host='192.0.2.2',
            migration_type='live-migration' if live else 'resize',
            status=MIGRATION_STATUS[row.task_state],
            old_instance_type_id=self.flavor.id,
            new_instance_type_id=(self.flavor.id if live
                                  else self.new_flavor.id))
        migration.create()
        instance.migration_context = objects.MigrationContext(
            instance_uuid=instance.uuid, migration_id=migration.id,
            new_numa_topology=None, old_numa_topology=None,
            new_pci_devices=None, old_pci_devices=None,
            new_pci_requests=None, old_pci_requests=None,
            new_resources=None, old_resources=None)
        if not live:
            if row.vm_state != vm_states.RESIZED:
                # prep_resize keeps the vm_state to go back to.
                instance.system_metadata['old_vm_state'] = row.vm_state
            instance.old_flavor = self.flavor
            instance.new_flavor = self.new_flavor
            if row.task_state in NEW_FLAVOR_STATES:
                # finish_resize switched the flavor before finish_migration.
                instance.flavor = self.new_flavor
                instance.instance_type_id = self.new_flavor.id
                instance.memory_mb = self.new_flavor.memory_mb
                instance.vcpus = self.new_flavor.vcpus
        instance.save()

    def _snapshot(self, uuid):
        return _raw_state(self.context, uuid)

    # -- start-up and the verdict -----------------------------------------

    def off_table(self, results):
        """How each row's end differs from the end-state table."""
        table = end_states.load()
        found = []
        for row, _outcome in results:
            name = end_states.key(row.task_state, row.vm_state,
                                  _power(row.guest), row.stood)
            expected = table.get(name)
            if expected is None:
                found.append('%s: no row in end_states.json' % name)
                continue
            for field, (want, got) in sorted(end_states.differences(
                    expected, self.ends[row]).items()):
                found.append('%s: %s expected %r, got %r' % (
                    name, field, want, got))
        return found

    def report(self, results, title):
        """Attach the counts and rows; append them to the report file."""
        text = summarize(results, title)
        self.addDetail('census', content.text_content(text))
        self.addDetail('rows', content.text_content(describe(results)))
        LOG.warning('%s', text)
        path = os.environ.get('NOVA_RECOVER_CENSUS_OUT')
        if path:
            with open(path, 'a') as f:
                f.write(text + '\n' + describe(results) + '\n\n')

    def census(self, census_rows):
        """Create the rows, run start-up once, return (row, outcome)s."""
        made = [(row, self._create(row)) for row in census_rows]
        before = {uuid: self._snapshot(uuid) for _row, uuid in made}
        errors = {}
        # What init_host does for each instance of the host.
        instances = objects.InstanceList.get_by_host(
            self.context, HOST,
            expected_attrs=['info_cache', 'metadata', 'numa_topology'])
        for instance in instances:
            try:
                self.compute._init_instance(self.context, instance)
            except Exception as exc:
                errors[instance.uuid] = exc
        # Stock nova has no sweep: a lost request stays as it was left.
        lost = [uuid for row, uuid in made
                if row.stood == end_states.LOST and not self.STOCK]
        for uuid in lost:
            try:
                self._lose(uuid)
            except Exception as exc:
                errors[uuid] = exc
        results = []
        self.ends = {}
        for row, uuid in made:
            after = self._snapshot(uuid)
            outcome = self._classify(row, before[uuid], after,
                                     errors.get(uuid))
            results.append((row, outcome))
            self.ends[row] = self.end_row(row, uuid, after)
        return results

    def _lose(self, uuid):
        """What the sweep does once a held request turns out lost.

        The sweep decides that on its own clock (test_queued proves
        when); here it is told at once, so the table can show the end.
        """
        package = ('nova.compute.startup_recovery'
                   if overlay_fixtures.native()
                   else 'nova_recover.startup_recovery')
        contracts = importlib.import_module(package + '.contracts')
        engine = importlib.import_module(package + '.engine')
        lost_request = importlib.import_module(package + '.lost_request')
        lost = importlib.import_module(package + '.sweep')
        if overlay_fixtures.native():
            default = self.compute._init_instance_default
        else:
            from nova_recover import overlay
            default = functools.partial(overlay.original(), self.compute)
        instance = objects.Instance.get_by_uuid(
            self.context, uuid,
            expected_attrs=['info_cache', 'metadata', 'numa_topology'])
        held = contracts.GateRequest(
            manager=self.compute, context=self.context, instance=instance,
            task_state=instance.task_state, rule=None,
            nova_path=engine.nova_path_for(self.compute, default),
            report=engine.recovered)
        lost.take_as_lost(self.compute, self.context, instance,
                          functools.partial(lost_request.recover_lost,
                                            held=held))

    def end_row(self, row, uuid, after):
        """Every field the owner sees of the row's server, for the table."""
        guest = self.compute.driver.instances.get(uuid)
        host = after['host']
        return {
            'task_state_before': row.task_state,
            'vm_state_before': row.vm_state,
            'guest_before': _power(row.guest),
            'stood': row.stood,
            'operation': recovery_base.operation_of(
                types.SimpleNamespace(task_state=row.task_state,
                                      vm_state=row.vm_state)),
            'vm_state': after['vm_state'],
            'task_state': after['task_state'],
            'host': 'this' if host == HOST else (host or 'none'),
            'flavor': _flavor(after.get('instance_extra.flavor')),
            'power_state': _power(after['power_state']),
            'guest': _power(guest.state) if guest is not None else 'none',
            'images': ', '.join(
                '%s:%s' % (kind, self._image_status(image_id))
                for kind, image_id in self.images.get(uuid, ())),
            'events': self._events(uuid),
            'fault': self._fault(uuid),
            'calls': ', '.join(self.calls.get(uuid, ())),
        }

    def _image_status(self, image_id):
        image = self.glance.images.get(image_id)
        return image['status'] if image is not None else 'deleted'

    def _events(self, uuid):
        context = self.context.elevated(read_deleted='yes')
        found = []
        actions = objects.InstanceActionList.get_by_instance_uuid(
            context, uuid)
        for action in sorted(actions, key=lambda a: a.id):
            events = objects.InstanceActionEventList.get_by_action(
                context, action.id)
            found.extend(sorted('%s/%s:%s' % (
                action.action, event.event, event.result or 'open')
                for event in events))
        return ', '.join(found)

    def _fault(self, uuid):
        faults = objects.InstanceFaultList.get_latest_by_instance_uuids(
            self.context, [uuid])
        return faults[0].message if faults else None

    def _classify(self, row, before, after, error):
        if error is not None:
            return 'EXCEPTION: %s' % error
        if row.stood == end_states.QUEUED:
            if after == before:
                return 'left-queued'
            return 'QUEUED-TOUCHED (to %s/%s)' % (after['vm_state'],
                                                 after['task_state'])
        if after['deleted']:
            if row.task_state == task_states.DELETING:
                return 'deleted'
            return 'INCONSISTENT (deleted)'
        if (after['task_state'] is not None or
                after['vm_state'] == vm_states.BUILDING):
            return 'STILL-STUCK'
        guest = self.compute.driver.instances.get(after['uuid'])
        guest = guest.state if guest is not None else power_state.NOSTATE
        if after['vm_state'] == vm_states.ERROR:
            if after['faults'] > before['faults']:
                return 'errored-with-fault'
            if row.vm_state == vm_states.ERROR:
                return 'stayed-error'
            return 'INCONSISTENT (ERROR without a fault)'
        if guest not in AGREES.get(after['vm_state'], ()):
            return 'INCONSISTENT (%s with guest %s)' % (
                after['vm_state'], power_state.STATE_MAP[guest])
        if (after['vm_state'] == vm_states.SHELVED_OFFLOADED and
                guest == power_state.NOSTATE):
            # nova's offload records the power state read before destroy.
            return 'recovered-to-%s' % after['vm_state']
        if after['power_state'] != guest:
            return 'INCONSISTENT (power_state %s, guest %s)' % (
                power_state.STATE_MAP.get(after['power_state']),
                power_state.STATE_MAP[guest])
        return 'recovered-to-%s' % after['vm_state']


def _power(state):
    return 'none' if state == power_state.NOSTATE else (
        power_state.STATE_MAP.get(state, str(state)))


def _flavor(extra):
    """old or new: which of a resize's flavors the server has now."""
    if not extra:
        return None
    current = json.loads(extra).get('cur') or {}
    name = current.get('nova_object.data', {}).get('name')
    return {'census': 'old', 'census-new': 'new'}.get(name, name)


def outcome_class(outcome):
    return outcome.split(' ', 1)[0].rstrip(':')


def is_good(outcome):
    return outcome.startswith(GOOD)


def describe(results):
    lines = []
    for row, outcome in results:
        lines.append('%-30s %-18s guest=%-9s %-7s -> %s' % (
            row.task_state, row.vm_state, power_state.STATE_MAP[row.guest],
            row.stood, outcome))
    return '\n'.join(lines)


def summarize(results, title):
    counts = collections.Counter(outcome_class(o) for _r, o in results)
    states = {row.task_state for row, _o in results}
    stuck = [r for r, o in results
             if r.stood != end_states.QUEUED and not is_good(o)]
    stuck_states = {r.task_state for r in stuck}
    reached = [r for r, _o in results if r.stood == end_states.REACHED]
    lost = [r for r, _o in results if r.stood == end_states.LOST]
    lines = ['%s: %d rows (%d reached, %d queued, %d lost) over %d task '
             'states' % (title, len(results), len(reached),
                         len(results) - len(reached) - len(lost), len(lost),
                         len(states))]
    for name, count in sorted(counts.items()):
        lines.append('  %-34s %4d' % (name, count))
    still = [r for r, o in results if o == 'STILL-STUCK']
    lines.append('  reached rows STILL-STUCK (task_state kept): %d of %d '
                 '(%.0f%%) across %d of %d task states' % (
                     len(still), len(reached),
                     100.0 * len(still) / max(len(reached), 1),
                     len({r.task_state for r in still}), len(states)))
    lines.append('  reached rows not recovered: %d of %d (%.0f%%) across '
                 '%d of %d task states' % (
                     len(stuck), len(reached),
                     100.0 * len(stuck) / max(len(reached), 1),
                     len(stuck_states), len(states)))
    return '\n'.join(lines)


class CensusTestCase(CensusBase):
    """Per task state: reached rows recover, queued rows stay as they are."""

    scenarios = [(state, {'task_state': state})
                 for state in coverage.installed_task_states()]

    def _check(self, results, expected):
        self.addDetail('rows', content.text_content(describe(results)))
        self.assertEqual([], self.off_table(results))
        bad = [(r, o) for r, o in results if not is_good(o)]
        if expected:
            def _all_good():
                self.assertEqual([], bad)
            self.expectFailure(expected, _all_good)
            return
        self.assertEqual([], bad, describe(bad))

    def test_reached_rows_recover(self):
        results = self.census(
            [r for r in rows(self.task_state)
             if r.stood == end_states.REACHED])
        self.assertTrue(results)
        self._check(results, EXPECTED_STUCK.get(self.task_state))

    def test_queued_rows_are_left_alone(self):
        queued = [r for r in rows(self.task_state)
                  if r.stood == end_states.QUEUED]
        if not queued:
            # Not a skip: nova-compute alone sets this state, so no
            # request can be queued behind it.
            self.assertNotIn(self.task_state,
                             getattr(evidence, 'API_SET', {}))
            return
        self._check(self.census(queued),
                    QUEUED_EXPECTED_TOUCHED.get(self.task_state))

    def test_lost_rows_stay_as_before(self):
        lost = [r for r in rows(self.task_state)
                if r.stood == end_states.LOST]
        if not lost:
            self.assertNotIn(self.task_state,
                             getattr(evidence, 'API_SET', {}))
            return
        self._check(self.census(lost), None)


class FailingDriverTestCase(CensusBase):
    """A hypervisor failing every operation never breaks start-up."""

    DRIVER = FailingCensusDriver

    def test_no_exception_escapes(self):
        results = self.census(all_rows())
        self.report(results, 'nova-recover, failing driver')
        raised = [(r, o) for r, o in results if o.startswith('EXCEPTION')]
        self.assertEqual([], raised, describe(raised))
        stuck = [(r, o) for r, o in results if o == 'STILL-STUCK' and
                 r.task_state not in EXPECTED_STUCK]
        self.assertEqual([], stuck, describe(stuck))


class CensusSummaryTestCase(CensusBase):
    """The census counts, for the report; asserts only that it ran."""

    def test_summary(self):
        results = self.census(all_rows())
        self.report(results, 'stock nova' if self.STOCK else 'nova-recover')
        self.assertTrue(results)


class StockCensusSummaryTestCase(CensusSummaryTestCase):
    """The same census on nova as released: the baseline."""

    STOCK = True
