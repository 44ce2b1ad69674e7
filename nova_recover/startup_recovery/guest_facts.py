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

"""What a virt driver knows of an operation it left half done.

Beyond the recover-stuck-state blueprint: no upstream change.

States owned: none; the image, rescue and resize rules ask it.

The virt driver API says what a guest's power state is, not how far a
driver's own multi-step operation got: that a cold snapshot saved the
guest's memory, that an unrescue already dropped the record of the
original guest, that a resize had not yet moved the disk. Only a driver
that keeps such traces can answer, and each answer changes what a rule
may safely do. GuestFacts is that small contract: every question
answers True, False or None for "cannot tell", and a rule treats None
as it did before it asked, so a driver without an implementation (the
fake driver, or any driver but libvirt) recovers exactly as without this
module. for_driver picks the implementation from the driver instance;
nothing here imports libvirt or the libvirt driver before a LibvirtDriver
asks, so the other drivers never load them.
"""

import abc
import functools
import glob
import os
import shutil
import typing as ty

from lxml import etree
from oslo_log import log as logging

import nova.conf
from nova import exception
from nova import objects

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# A rescue disk's name ends so on libvirt: disk.rescue, or
# <uuid>_disk.rescue in a Ceph pool.
RESCUE_SUFFIX = '.rescue'


class GuestFacts(abc.ABC):
    """The driver's answers about one instance's guest.

    A question answers None when the driver cannot tell, or cannot read
    it right now: the caller then does what it did without asking.
    """

    @abc.abstractmethod
    def has_saved_memory(self, instance) -> ty.Optional[bool]:
        """Whether the guest is off with its memory saved to disk.

        libvirt saves it so (a managed save) for a suspend and for a cold
        snapshot, and starting the guest restores it; a hard reboot drops
        it.
        """

    @abc.abstractmethod
    def restore_saved_memory(self, context, instance, paused: bool) -> None:
        """Start the guest from its saved memory, as a cold snapshot does
        once its copy is taken; paused if it was paused.

        Only called where has_saved_memory answered True. Raises if the
        guest could not be started.
        """

    @abc.abstractmethod
    def resize_disk_moved(self, instance) -> ty.Optional[bool]:
        """Whether migrate_disk_and_power_off moved the guest's disk aside.

        After that, only finish_revert_migration brings the disk back;
        before it, the guest is untouched.
        """

    @abc.abstractmethod
    def has_unrescue_record(self, instance) -> ty.Optional[bool]:
        """Whether the record unrescue needs of the original guest exists.

        libvirt's rescue writes it before it touches the guest, and its
        unrescue deletes it once the original guest is back.
        """

    @abc.abstractmethod
    def runs_rescue_guest(self, instance) -> ty.Optional[bool]:
        """Whether the guest defined for the instance is its rescue guest.

        None also when there is no guest at all.
        """

    @abc.abstractmethod
    def remove_rescue_leftovers(self, instance) -> None:
        """Delete the rescue disks a finished unrescue had not yet deleted.

        They are copies made for the rescue, never the user's data. Only
        called where has_unrescue_record and runs_rescue_guest answered
        False.
        """

    @abc.abstractmethod
    def left_live_snapshot(self, instance) -> ty.Optional[bool]:
        """Whether a live snapshot's copy of the disk was left running.

        libvirt's live snapshot undefines the domain (a block copy needs
        a transient one) and copies the disk with a block job, and only
        its end aborts the job and defines the domain again: dying in
        between leaves a running guest that vanishes for good once it
        stops, its disk still mirrored into nova's snapshots directory.
        """

    @abc.abstractmethod
    def end_live_snapshot(self, instance) -> None:
        """End what left_live_snapshot found, as the snapshot's own end
        does: abort the copy, drop the half-made copy in the snapshots
        directory, define the guest again. The guest keeps running.

        Only called where left_live_snapshot answered True. Raises if it
        could not.
        """


class UnknownGuestFacts(GuestFacts):
    """A driver that keeps no trace of its operations: it cannot tell."""

    def has_saved_memory(self, instance):
        return None

    def restore_saved_memory(self, context, instance, paused):
        raise NotImplementedError()

    def resize_disk_moved(self, instance):
        return None

    def has_unrescue_record(self, instance):
        return None

    def runs_rescue_guest(self, instance):
        return None

    def remove_rescue_leftovers(self, instance):
        raise NotImplementedError()

    def left_live_snapshot(self, instance):
        return None

    def end_live_snapshot(self, instance):
        raise NotImplementedError()


def _none_if_unreadable(question):
    """A question that answers None, as the contract says, when the
    driver cannot read the answer (libvirt down, a file unreadable):
    the rule then does what it did before asking, rather than putting
    the instance in ERROR for it.
    """
    @functools.wraps(question)
    def ask(self, instance):
        try:
            return question(self, instance)
        except Exception as exc:
            LOG.warning('Could not tell %(question)s: %(error)s',
                        {'question': question.__name__, 'error': exc},
                        instance=instance)
            return None
    return ask


class LibvirtGuestFacts(GuestFacts):
    """Read from the domain and the instance directory, as
    nova.virt.libvirt.driver's snapshot, rescue, unrescue and
    migrate_disk_and_power_off leave them.
    """

    def __init__(self, driver):
        self.driver = driver

    def _guest(self, instance):
        try:
            return self.driver._host.get_guest(instance)
        except exception.InstanceNotFound:
            return None

    @staticmethod
    def _instance_dir(instance):
        from nova.virt.libvirt import utils as libvirt_utils
        return libvirt_utils.get_instance_path(instance)

    @_none_if_unreadable
    def has_saved_memory(self, instance):
        guest = self._guest(instance)
        if guest is None:
            return None
        return bool(guest._domain.hasManagedSaveImage(0))

    def restore_saved_memory(self, context, instance, paused):
        # What LibvirtDriver._resume_guest_after_snapshot does once the
        # copy is taken, but paused as asked rather than as libvirt
        # recorded it: the instance's vm_state is what the owner sees.
        guest = self.driver._host.get_guest(instance)
        self.driver.cpu_api.power_up_for_instance(instance)
        guest.launch(pause=paused)
        self.driver._attach_pci_devices(
            guest, instance.get_pci_devices(
                source=objects.InstancePCIRequest.FLAVOR_ALIAS))
        self.driver._attach_direct_passthrough_ports(context, instance,
                                                     guest)

    @_none_if_unreadable
    def resize_disk_moved(self, instance):
        # migrate_disk_and_power_off powers the guest off, then renames
        # the instance directory to this, also on shared storage.
        return os.path.exists(self._instance_dir(instance) + '_resize')

    @_none_if_unreadable
    def has_unrescue_record(self, instance):
        return os.path.exists(os.path.join(self._instance_dir(instance),
                                           'unrescue.xml'))

    @_none_if_unreadable
    def runs_rescue_guest(self, instance):
        guest = self._guest(instance)
        if guest is None:
            return None
        tree = etree.fromstring(guest.get_xml_desc())
        for source in tree.findall('./devices/disk/source'):
            name = (source.get('file') or source.get('dev') or
                    source.get('name') or '')
            if name.endswith(RESCUE_SUFFIX):
                return True
        return False

    def remove_rescue_leftovers(self, instance):
        # The tail of LibvirtDriver.unrescue, after unrescue.xml is gone.
        from nova.storage import rbd_utils
        from nova.virt.libvirt.storage import lvm
        pattern = os.path.join(self._instance_dir(instance),
                               '*' + RESCUE_SUFFIX)
        for path in glob.iglob(pattern):
            LOG.info('Removing the rescue disk %s that an unrescue left',
                     path, instance=instance)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        lvm.remove_volumes([disk for disk in self.driver._lvm_disks(instance)
                            if disk.endswith(RESCUE_SUFFIX)])
        if CONF.libvirt.images_type == 'rbd':
            rbd_utils.RBDDriver().cleanup_volumes(
                lambda disk: (disk.startswith(instance.uuid) and
                              disk.endswith(RESCUE_SUFFIX)))

    @staticmethod
    def _copies(guest):
        """{disk target: the file its block copy writes to} of the guest."""
        tree = etree.fromstring(guest.get_xml_desc())
        copies = {}
        for disk in tree.findall('./devices/disk'):
            target = disk.find('target')
            mirror = disk.find('mirror')
            if target is None:
                continue
            dev = target.get('dev')
            if mirror is not None:
                source = mirror.find('source')
                copies[dev] = mirror.get('file') or (
                    source is not None and source.get('file')) or None
            elif guest.get_block_device(dev).get_job_info().job:
                copies[dev] = None
        return copies

    @_none_if_unreadable
    def left_live_snapshot(self, instance):
        guest = self._guest(instance)
        if guest is None:
            return None
        return (not guest.has_persistent_configuration() or
                bool(self._copies(guest)))

    def end_live_snapshot(self, instance):
        # The end of LibvirtDriver._live_snapshot, with the domain's own
        # description standing in for the one the snapshot kept in
        # memory: once the copy is aborted it is the guest's.
        guest = self.driver._host.get_guest(instance)
        copies = self._copies(guest)
        for dev in copies:
            LOG.info('Aborting the block copy of %s that an interrupted '
                     'live snapshot left', dev, instance=instance)
            guest.get_block_device(dev).abort_job()
        if not guest.has_persistent_configuration():
            LOG.info('Defining again the guest an interrupted live '
                     'snapshot left transient', instance=instance)
            self.driver._host.write_instance_config(guest.get_xml_desc(
                dump_inactive=True, dump_sensitive=True))
        snapshots = os.path.realpath(CONF.libvirt.snapshots_directory)
        for path in filter(None, copies.values()):
            # The half-made copy, in the snapshot's own temporary
            # directory: never the guest's disk.
            parent = os.path.dirname(os.path.realpath(path))
            if os.path.dirname(parent) != snapshots:
                continue
            LOG.info('Removing %s, the copy an interrupted live snapshot '
                     'left', parent, instance=instance)
            shutil.rmtree(parent, ignore_errors=True)


def _is_libvirt(driver):
    return any(cls.__name__ == 'LibvirtDriver' and
               cls.__module__ == 'nova.virt.libvirt.driver'
               for cls in type(driver).__mro__)


def for_driver(driver):
    """The GuestFacts of a virt driver instance.

    Told by the driver's class, not by an isinstance check, which would
    import the libvirt driver into every nova-compute.
    """
    if _is_libvirt(driver):
        return LibvirtGuestFacts(driver)
    return UnknownGuestFacts()
