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

"""Crash nova-compute half-way through a libvirt driver operation.

The fake driver keeps no trace of how far an operation got; nova's
LibvirtDriver does (a managed save, unrescue.xml, the ``_resize``
directory), and what start-up may do depends on it. These tests run the
real LibvirtDriver on nova's fakelibvirt, die where the driver's own
steps leave such a trace, restart nova-compute through the overlay and
check exactly where the server ends.

fakelibvirt is simpler than libvirt in ways that matter here, and
RealLibvirtDomains makes it behave as libvirt does: a managed save shuts
the domain off, starting a running domain fails, defining a running
domain changes its next configuration, not the running one (and makes a
transient domain persistent), undefining a running domain makes it
transient, and a block copy is a job until it is aborted.
"""

import functools
import os
import time
from unittest import mock

import fixtures
import threading

from nova.compute import power_state
from nova import context as nova_context
from nova import objects
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.functional.libvirt import base as libvirt_base
from nova.virt.libvirt import utils as libvirt_utils

from nova_recover.tests import fixtures as recover_fixtures
from nova_recover.tests.functional import base
from nova_recover.tests.functional import scenarios
from nova_recover.tests import overlay_fixtures

HOST = 'host1'


class RealLibvirtDomains(fixtures.Fixture):
    """fakelibvirt's Domain and Connection, where they differ from
    libvirt in what these tests look at.
    """

    def _setUp(self):
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.libvirt.Domain.managedSave',
            _managed_save))
        real_create = fakelibvirt.Domain.createWithFlags
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.libvirt.Domain.createWithFlags',
            functools.partialmethod(_create_with_flags, real_create)))
        real_define = fakelibvirt.Connection.defineXML
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.libvirt.Connection.defineXML',
            functools.partialmethod(_define_xml, real_define)))
        real_undefine = fakelibvirt.Domain.undefine
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.libvirt.Domain.undefine',
            functools.partialmethod(_undefine, real_undefine)))
        for name, fake in (('isPersistent', _is_persistent),
                           ('blockRebase', _block_rebase),
                           ('blockJobInfo', _block_job_info),
                           ('blockJobAbort', _block_job_abort)):
            self.useFixture(fixtures.MonkeyPatch(
                'nova.tests.fixtures.libvirt.Domain.' + name, fake))


def _managed_save(domain, flags):
    # libvirt stops the domain once its memory is saved.
    domain._state = fakelibvirt.VIR_DOMAIN_SHUTOFF
    domain._connection._mark_not_running(domain)
    domain._has_saved_state = True


def _create_with_flags(domain, real, flags):
    if domain.isActive():
        raise fakelibvirt.make_libvirtError(
            fakelibvirt.libvirtError,
            'Requested operation is not valid: domain is already running',
            error_code=fakelibvirt.VIR_ERR_OPERATION_INVALID,
            error_domain=fakelibvirt.VIR_FROM_DOMAIN)
    real(domain, flags)
    # A domain started paused stays paused, restored from a managed save
    # too.
    if flags & fakelibvirt.VIR_DOMAIN_START_PAUSED:
        domain._state = fakelibvirt.VIR_DOMAIN_PAUSED


def _define_xml(connection, real, xml):
    # Defining a running domain sets the configuration it gets at its
    # next start; the running guest is the same one, persistent now.
    running = [dom for dom in connection._vms.values() if dom.isActive()]
    new = real(connection, xml)
    for dom in running:
        if dom.UUIDString() == new.UUIDString():
            connection._vms[dom.name()] = dom
            dom._transient = False
            return dom
    return new


def _undefine(domain, real):
    # A running domain runs on, transient: it is gone once it stops.
    if domain.isActive():
        domain._transient = True
        return
    real(domain)


def _is_persistent(domain):
    return int(not domain._transient)


def _block_rebase(domain, disk, base, bandwidth=0, flags=0):
    if flags & fakelibvirt.VIR_DOMAIN_BLOCK_REBASE_COPY:
        domain.__dict__.setdefault('_copy_jobs', set()).add(disk)
    return 0


# libvirt's VIR_DOMAIN_BLOCK_JOB_TYPE_COPY, which fakelibvirt lacks.
BLOCK_JOB_TYPE_COPY = 2


def _block_job_info(domain, disk, flags):
    # A copy stays a job, mirroring, until it is aborted (or pivoted).
    if disk in domain.__dict__.get('_copy_jobs', ()):
        return {'type': BLOCK_JOB_TYPE_COPY,
                'bandwidth': 0, 'cur': 1, 'end': 1}
    return {}


def _block_job_abort(domain, disk, flags):
    domain.__dict__.get('_copy_jobs', set()).discard(disk)


class LibvirtHalfStateTestCase(base.PatientWaits,
                               libvirt_base.ServersTestBase):
    """One libvirt compute, real RPC casts, restarted through the overlay."""

    microversion = 'latest'
    ADMIN_API = True
    CAST_AS_CALL = False

    # The crash machinery of the fake-driver tests, which needs only
    # self.computes, self.api and kill_and_restart.
    crash_during = base.CrashRestartTestCase.crash_during
    _release_parked = base.CrashRestartTestCase._release_parked
    task_state = base.CrashRestartTestCase.task_state
    actions = base.CrashRestartTestCase.actions
    image_rows = base.CrashRestartTestCase.image_rows

    def setUp(self):
        super().setUp()
        self.useFixture(overlay_fixtures.Overlay())
        self.useFixture(recover_fixtures.ProductionShape(
            threads=overlay_fixtures.startup_threads()))
        self.useFixture(RealLibvirtDomains())
        base.no_shutdown_wait(self)
        self.start_compute(HOST)
        self._parked = threading.Event()
        self._dying = []
        self.addCleanup(self._release_parked)
        self.ctxt = nova_context.get_admin_context()

    def kill_and_restart(self, host=HOST):
        """base.CrashRestartTestCase.kill_and_restart, with the libvirt
        base's restart, which keeps the fake hypervisor's domains.
        """
        compute = self.computes[host]
        base.kill(compute)
        base._sweep_module().stop(compute.manager)
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.lockutils._semaphores',
            __import__('oslo_concurrency.lockutils').lockutils.Semaphores()))
        with mock.patch.object(compute, 'stop'):
            self.restart_compute_service(host)
        return self.computes[host]

    @property
    def driver(self):
        return self.computes[HOST].driver

    def create_server(self):
        server = self._create_server(networks='none', host=HOST)
        # The instance directory that LibvirtDriver._create_image, mocked
        # by nova's libvirt test base, makes for the disks.
        os.makedirs(self.instance_dir(server['id']))
        return server

    def domain(self, server_id):
        return self.driver._host.get_connection().lookupByUUIDString(
            server_id)

    def instance_dir(self, server_id):
        instance = objects.Instance.get_by_uuid(self.ctxt, server_id)
        return libvirt_utils.get_instance_path(instance)

    def assertServer(self, server_id, vm_state, power, flavor='m1.tiny',
                     fault=None):
        server = self.api.get_server(server_id)
        self.assertEqual(
            {'vm_state': vm_state, 'task_state': None, 'host': HOST,
             'flavor': flavor, 'power_state': power, 'fault': fault},
            {'vm_state': server['OS-EXT-STS:vm_state'],
             'task_state': server['OS-EXT-STS:task_state'],
             'host': server['OS-EXT-SRV-ATTR:host'],
             'flavor': server['flavor']['original_name'],
             'power_state': power_state.STATE_MAP[
                 server['OS-EXT-STS:power_state']],
             'fault': server.get('fault', {}).get('message')})
        return server


class ColdSnapshotTestCase(LibvirtHalfStateTestCase):
    """A cold snapshot that died between its managed save and the start.

    libvirt's snapshot saves a running or paused guest's memory
    (managedSave, which shuts the domain off) when it cannot snapshot it
    live, extracts the disk, then starts the domain again, which
    restores the memory. Dying after the extract leaves the domain off
    with its memory saved.
    """

    def setUp(self):
        super().setUp()
        # Cold, as for an LVM or encrypted ephemeral disk.
        self.flags(disable_libvirt_livesnapshot=True, group='workarounds')

    def _crash_in_cold_snapshot(self, server):
        with self.crash_during('_resume_guest_after_snapshot') as crash:
            self._snapshot_server(server, 'crash-snapshot')
        # Where the driver died: the domain off, its memory saved.
        self.assertEqual('image_pending_upload', crash['task_state'])
        return crash

    def _assert_memory_restored(self, server_id, guest_state):
        domain = self.domain(server_id)
        self.assertEqual(0, domain.hasManagedSaveImage(0))
        self.assertEqual(guest_state, domain.info()[0])
        # The unfinished image is gone (the glance fixture has the one the
        # API made active: nothing to delete) and the owner is told.
        self.assertEqual([['crash-snapshot', 'active']],
                         self.image_rows(server_id))
        self.assertEqual(
            {'action': 'createImage',
             'events': [list(event) for event in scenarios.SNAPSHOT_DIED]},
            self.actions(server_id)[-1])

    def test_running_guest_is_started_from_its_saved_memory(self):
        """Failed before the fix: the server ended STOPPED, its guest
        shut off with the memory still saved, which a start (a hard
        reboot) throws away.
        """
        server = self.create_server()
        self._crash_in_cold_snapshot(server)
        self.assertServer(server['id'], 'active', 'running')
        self._assert_memory_restored(server['id'],
                                     fakelibvirt.VIR_DOMAIN_RUNNING)

    def test_paused_guest_is_started_paused(self):
        """Failed before the fix, as for a running guest."""
        server = self.create_server()
        self.api.post_server_action(server['id'], {'pause': None})
        server = self._wait_for_state_change(server, 'PAUSED')
        self._crash_in_cold_snapshot(server)
        self.assertServer(server['id'], 'paused', 'paused')
        self._assert_memory_restored(server['id'],
                                     fakelibvirt.VIR_DOMAIN_PAUSED)


class LiveSnapshotTestCase(LibvirtHalfStateTestCase):
    """A live snapshot that died during its block copy.

    libvirt's live snapshot undefines the domain, starts a block copy of
    its disk into the snapshots directory, waits for it, then aborts the
    copy and defines the domain again. Dying during the copy leaves the
    guest running, transient and mirrored.
    """

    def test_guest_is_defined_again_and_its_copy_aborted(self):
        """Failed before the fix: the server was ACTIVE, but its domain
        stayed transient (gone for good at its next stop) with the copy
        running.
        """
        server = self.create_server()
        with self.crash_during('_live_snapshot') as crash:
            self._snapshot_server(server, 'crash-snapshot')
            self._wait_until(lambda: crash.get('task_state'))
            # What _live_snapshot does before it waits for the copy.
            instance = objects.Instance.get_by_uuid(self.ctxt,
                                                    server['id'])
            guest = self.driver._host.get_guest(instance)
            self.driver._delete_guest_configuration(
                guest, keep_vtpm=True, keep_nvram=True)
            guest.get_block_device('vda').rebase(
                '/nonexistent/snap.delta', copy=True, reuse_ext=True,
                shallow=True)
            self.assertFalse(guest.has_persistent_configuration())
        self.assertEqual('image_pending_upload', crash['task_state'])

        self.assertServer(server['id'], 'active', 'running')
        domain = self.domain(server['id'])
        self.assertEqual(fakelibvirt.VIR_DOMAIN_RUNNING, domain.info()[0])
        self.assertEqual(1, domain.isPersistent())
        self.assertEqual({}, domain.blockJobInfo('vda', 0))
        # The glance fixture has the image the API made active: nothing
        # unfinished to delete.
        self.assertEqual([['crash-snapshot', 'active']],
                         self.image_rows(server['id']))
        self.assertEqual(
            {'action': 'createImage',
             'events': [list(event) for event in scenarios.SNAPSHOT_DIED]},
            self.actions(server['id'])[-1])

    def _wait_until(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out waiting for the crash point')
            time.sleep(0.1)


class ResizeMigratingTestCase(LibvirtHalfStateTestCase):
    """A resize that died in RESIZE_MIGRATING before the power-off.

    The compute saves RESIZE_MIGRATING before it calls
    migrate_disk_and_power_off, which powers the guest off and only then
    moves the instance directory to ``<instance dir>_resize``.
    """

    def setUp(self):
        super().setUp()
        self.flags(allow_resize_to_same_host=True)

    def test_running_guest_is_kept(self):
        """Failed before the fix: finish_revert_migration tried to start
        the running domain, libvirt refused, and the server went to
        ERROR, its running guest's VIFs unplugged.
        """
        server = self.create_server()
        domain = self.domain(server['id'])
        with self.crash_during('migrate_disk_and_power_off') as crash:
            self.api.post_server_action(
                server['id'], {'resize': {'flavorRef': '2'}})
        self.assertEqual('resize_migrating', crash['task_state'])
        self.assertFalse(os.path.exists(
            self.instance_dir(server['id']) + '_resize'))

        self.assertServer(server['id'], 'active', 'running')
        # The very guest that ran before, still running.
        self.assertIs(domain, self.domain(server['id']))
        self.assertEqual(fakelibvirt.VIR_DOMAIN_RUNNING, domain.info()[0])
        migrations = self.api.get_migrations()
        self.assertEqual(
            [('resize', 'error')],
            [(m['migration_type'], m['status']) for m in migrations])
        # The migration's hold on the source is back with the instance,
        # for the old flavor only.
        self.assertEqual({}, self._get_allocations_by_server_uuid(
            migrations[0]['uuid']))
        self.assertEqual(
            {self.compute_rp_uuids[HOST]: {
                'DISK_GB': 1, 'MEMORY_MB': 512, 'VCPU': 1}},
            {rp: alloc['resources'] for rp, alloc in
             self._get_allocations_by_server_uuid(server['id']).items()})
        instance = objects.Instance.get_by_uuid(
            self.ctxt, server['id'], expected_attrs=['migration_context'])
        self.assertIsNone(instance.migration_context)
        self.assertEqual(
            {'action': 'resize',
             'events': [['cold_migrate', 'Success'],
                        ['compute_prep_resize', 'Success'],
                        ['compute_resize_instance', 'Error'],
                        ['conductor_migrate_server', 'Success']]},
            self.actions(server['id'])[-1])

    def test_guest_powered_off_and_disk_moved_is_brought_back(self):
        """The driver finished migrate_disk_and_power_off and nova-compute
        died before it recorded RESIZE_MIGRATED: finish_revert_migration
        brings the disk back and starts the guest.

        Failed before the rule gave the old flavor: libvirt's
        finish_revert_migration reads it, resize_instance records it
        only after migrate_disk_and_power_off, and the server went to
        ERROR.
        """
        server = self.create_server()
        driver = self.driver

        def power_off_and_move_disk(*args, **kwargs):
            # LibvirtDriver.migrate_disk_and_power_off up to the copy,
            # which fakelibvirt's disks without files cannot do.
            instance = base._instance_of(args, kwargs)
            driver.power_off(instance)
            inst_base = libvirt_utils.get_instance_path(instance)
            os.rename(inst_base, inst_base + '_resize')

        with mock.patch.object(driver, 'migrate_disk_and_power_off',
                               new=power_off_and_move_disk), \
                self.crash_during('migrate_disk_and_power_off',
                                  after=True) as crash:
            self.api.post_server_action(
                server['id'], {'resize': {'flavorRef': '2'}})
        self.assertEqual('resize_migrating', crash['task_state'])

        self.assertServer(server['id'], 'active', 'running')
        instance_dir = self.instance_dir(server['id'])
        self.assertTrue(os.path.isdir(instance_dir))
        self.assertFalse(os.path.exists(instance_dir + '_resize'))
        self.assertEqual(fakelibvirt.VIR_DOMAIN_RUNNING,
                         self.domain(server['id']).info()[0])
        self.assertEqual(
            [('resize', 'error')],
            [(m['migration_type'], m['status'])
             for m in self.api.get_migrations()])


class RescueTestCase(LibvirtHalfStateTestCase):
    """A rescue or unrescue that died on either side of unrescue.xml.

    libvirt's rescue writes the original domain's XML to
    ``<instance dir>/unrescue.xml`` first, then replaces the domain by
    the rescue domain (disks ``*.rescue``). Its unrescue loads that XML,
    destroys the rescue domain, creates the original one, deletes
    unrescue.xml and then the rescue disks.
    """

    def rescue_server(self, server):
        server = self._rescue_server(server)
        # The rescue disk LibvirtDriver._create_image, mocked by nova's
        # libvirt test base, copies from the rescue image.
        with open(self.rescue_disk(server['id']), 'wb') as f:
            f.write(b'rescue')
        self.assertTrue(self.runs_rescue_domain(server['id']))
        return server

    def rescue_disk(self, server_id):
        return os.path.join(self.instance_dir(server_id), 'disk.rescue')

    def unrescue_xml(self, server_id):
        return os.path.join(self.instance_dir(server_id), 'unrescue.xml')

    def runs_rescue_domain(self, server_id):
        return 'disk.rescue' in self.domain(server_id).XMLDesc(0)

    def assertOriginalGuestRuns(self, server_id, vm_state='active',
                                power='running',
                                guest=fakelibvirt.VIR_DOMAIN_RUNNING):
        self.assertServer(server_id, vm_state, power)
        self.assertEqual(guest, self.domain(server_id).info()[0])
        self.assertFalse(self.runs_rescue_domain(server_id))
        self.assertFalse(os.path.exists(self.unrescue_xml(server_id)))
        self.assertFalse(os.path.exists(self.rescue_disk(server_id)))

    def test_rescue_died_before_powering_off(self):
        """Failed before the fix: unrescue found no unrescue.xml and the
        healthy server went to ERROR, "a rescue disk may still be
        attached".
        """
        server = self.create_server()
        domain = self.domain(server['id'])
        # nova's rescue_instance powers the guest off before
        # driver.rescue.
        with self.crash_during('power_off') as crash:
            self.api.post_server_action(
                server['id'], {'rescue': {'adminPass': 'MySecretPass'}})
        self.assertEqual('rescuing', crash['task_state'])

        self.assertOriginalGuestRuns(server['id'])
        # The very guest that ran before.
        self.assertIs(domain, self.domain(server['id']))
        self.assertEqual(
            {'action': 'rescue',
             'events': [['compute_rescue_instance', 'Error']]},
            self.actions(server['id'])[-1])

    def test_rescue_died_before_unrescue_xml(self):
        """Failed before the fix, as above. The rescue had powered the
        original guest off, which stays so, as after any stop.
        """
        server = self.create_server()
        domain = self.domain(server['id'])
        with self.crash_during('rescue') as crash:
            self.api.post_server_action(
                server['id'], {'rescue': {'adminPass': 'MySecretPass'}})
        self.assertEqual('rescuing', crash['task_state'])

        self.assertOriginalGuestRuns(server['id'], 'stopped', 'shutdown',
                                     fakelibvirt.VIR_DOMAIN_SHUTOFF)
        self.assertIs(domain, self.domain(server['id']))
        self.assertEqual(
            {'action': 'rescue',
             'events': [['compute_rescue_instance', 'Error']]},
            self.actions(server['id'])[-1])

    def test_unrescue_died_after_deleting_unrescue_xml(self):
        """Failed before the fix, as the rescue above; the rescue disk
        the unrescue had not yet deleted was left too.
        """
        server = self.rescue_server(self.create_server())
        driver = self.driver

        def unrescue_until_xml_deleted(*args, **kwargs):
            # LibvirtDriver.unrescue up to the deletion of the rescue
            # disks.
            context, instance = args[:2]
            path = os.path.join(libvirt_utils.get_instance_path(instance),
                                'unrescue.xml')
            xml = libvirt_utils.load_file(path)
            driver._destroy(instance)
            driver._create_guest(context, xml, instance)
            os.unlink(path)

        with mock.patch.object(driver, 'unrescue',
                               new=unrescue_until_xml_deleted), \
                self.crash_during('unrescue', after=True) as crash:
            self.api.post_server_action(server['id'], {'unrescue': None})
        self.assertEqual('unrescuing', crash['task_state'])

        self.assertOriginalGuestRuns(server['id'])
        self.assertEqual(
            {'action': 'unrescue',
             'events': [['compute_unrescue_instance', 'Error']]},
            self.actions(server['id'])[-1])

    def test_unrescue_died_before_restoring(self):
        """unrescue.xml is there: start-up unrescues, as before."""
        server = self.rescue_server(self.create_server())
        with self.crash_during('unrescue') as crash:
            self.api.post_server_action(server['id'], {'unrescue': None})
        self.assertEqual('unrescuing', crash['task_state'])

        self.assertOriginalGuestRuns(server['id'])

    def test_rescue_guest_without_unrescue_xml_errors(self):
        """Nothing tells what the original guest was: ERROR, and the
        rescue guest is left as it is for the operator.
        """
        server = self.rescue_server(self.create_server())
        with self.crash_during('unrescue') as crash:
            os.unlink(self.unrescue_xml(server['id']))
            self.api.post_server_action(server['id'], {'unrescue': None})
        self.assertEqual('unrescuing', crash['task_state'])

        self.assertServer(
            server['id'], 'error', 'running',
            fault='unrescue interrupted by nova-compute restart: the '
                  'rescue guest runs and the record of the original guest '
                  'that unrescue needs is gone')
        self.assertTrue(self.runs_rescue_domain(server['id']))
        self.assertTrue(os.path.exists(self.rescue_disk(server['id'])))
