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
"""nova's libvirt driver with crash points at its half-states.

The real LibvirtDriver, unchanged but for crash points (crash_points.py):
the entry of each public method of ENTRIES, named by the method, and the
half-states of INNER, named ``<method>:<half-state>``, where a SIGKILL
leaves what only a real hypervisor leaves:

=======================================  ==================================
point                                    left behind
=======================================  ==================================
snapshot:managed-saved                   a cold snapshot's managed save:
                                         the domain shut off, its memory
                                         in the managed-save image
snapshot:block-job                       a live snapshot's block copy job
snapshot:uploading                       the glance image ``saving``, half
                                         uploaded
rescue:unrescue-xml-written              unrescue.xml, the original domain
                                         still running
rescue:destroyed                         unrescue.xml, no running domain
unrescue:destroyed                       the rescue domain destroyed, the
                                         original not started
unrescue:xml-deleted                     the original domain running,
                                         unrescue.xml gone
migrate_disk_and_power_off:resize-dir    the guest off, its disks moved to
                                         ``<uuid>_resize``
finish_migration:before-start            the new disks, no domain started
reboot:destroyed                         a hard reboot between the
                                         domain's destroy and its creation
live_migration:job                       the migration job running
destroy:destroyed                        the domain destroyed, its disks
                                         not yet removed (delete, shelve
                                         offload)
=======================================  ==================================

A rule with ``"cold": true`` for an instance makes its snapshot a cold
one (as ``[workarounds] disable_libvirt_livesnapshot`` does for all), so
that one host takes both kinds.

Loaded as ``compute_driver = crashpoint_libvirt.CrashPointLibvirtDriver``
through tools/deployment/pythonpath/sitecustomize.py.
"""

import functools
import threading

import nova.conf
from nova.virt import deployment_crash_points as crash_points
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import guest as libvirt_guest
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import utils as libvirt_utils

CONF = nova.conf.CONF

# Public driver methods: their entry is a crash point, and inner crash
# points know which of them they are in.
ENTRIES = ['spawn', 'destroy', 'reboot', 'power_off', 'power_on', 'pause',
           'unpause', 'suspend', 'resume', 'rescue', 'unrescue',
           'set_admin_password', 'migrate_disk_and_power_off',
           'finish_migration', 'finish_revert_migration',
           'confirm_migration', 'live_migration', 'snapshot', 'cleanup',
           'post_live_migration_at_destination']
# (driver method called, the public method it is called from, when, the
# half-state's point).
INNER = [
    ('_suspend_guest_for_snapshot', 'snapshot', 'after',
     'snapshot:managed-saved'),
    ('_create_image', 'rescue', 'before', 'rescue:unrescue-xml-written'),
    ('_create_guest', 'rescue', 'before', 'rescue:destroyed'),
    ('_create_guest', 'unrescue', 'before', 'unrescue:destroyed'),
    ('_lvm_disks', 'unrescue', 'before', 'unrescue:xml-deleted'),
    ('_create_guest_with_network', 'finish_migration', 'before',
     'finish_migration:before-start'),
    ('_create_guest_with_network', 'reboot', 'before', 'reboot:destroyed'),
    ('_live_migration_monitor', 'live_migration', 'before',
     'live_migration:job'),
    ('cleanup', 'destroy', 'before', 'destroy:destroyed'),
]

# The public method (name, instance uuid) each thread is in, innermost
# last; greenthread-local under eventlet.
_inside = threading.local()


def _stack():
    if not hasattr(_inside, 'stack'):
        _inside.stack = []
    return _inside.stack


def _current(outer=None):
    """The instance uuid of the innermost public method (named outer)."""
    for name, instance_uuid in reversed(_stack()):
        if outer is None or name == outer:
            return instance_uuid
    return None


def _instance_uuid(args, kwargs):
    instance = kwargs.get('instance')
    if instance is None:
        instance = next((a for a in args if hasattr(a, 'uuid') and
                         hasattr(a, 'vm_state')), None)
    return getattr(instance, 'uuid', None)


class CrashPointLibvirtDriver(libvirt_driver.LibvirtDriver):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only=read_only)
        self._crash = crash_points.CrashPoints(CONF.state_path)
        self._image_api = _UploadCrashPoint(self._image_api, self)
        has_min_version = self._host.has_min_version

        def live_snapshot_allowed(lv_ver=None, hv_ver=None, hv_type=None):
            # snapshot's only version check with hv_type alone decides
            # whether it may snapshot live.
            if (getattr(_inside, 'cold', False) and lv_ver is None and
                    hv_ver is None and
                    hv_type == libvirt_host.HV_DRIVER_QEMU):
                return False
            return has_min_version(lv_ver=lv_ver, hv_ver=hv_ver,
                                   hv_type=hv_type)
        self._host.has_min_version = live_snapshot_allowed

    def crash_point(self, point, instance_uuid):
        self._crash.hit(point, instance_uuid)

    def snapshot(self, context, instance, image_id, update_task_state):
        _inside.cold = bool(self._crash.rule_for(instance.uuid, 'cold'))
        try:
            return self._entry('snapshot', context, instance, image_id,
                               update_task_state)
        finally:
            _inside.cold = False


def _entry(self, name, *args, **kwargs):
    instance_uuid = _instance_uuid(args, kwargs)
    self.crash_point(name, instance_uuid)
    # For the crash points outside the driver's own methods.
    _inside.driver = self
    _stack().append((name, instance_uuid))
    try:
        return getattr(libvirt_driver.LibvirtDriver, name)(self, *args,
                                                           **kwargs)
    finally:
        _stack().pop()


CrashPointLibvirtDriver._entry = _entry


def _public(name):
    def call(self, *args, **kwargs):
        return self._entry(name, *args, **kwargs)
    call.__name__ = name
    return call


def _inner(base, points):
    def hit(self, when):
        for outer, at, point in points:
            if at != when:
                continue
            instance_uuid = _current(outer)
            if instance_uuid is not None:
                self.crash_point(point, instance_uuid)

    @functools.wraps(base)
    def call(self, *args, **kwargs):
        hit(self, 'before')
        result = base(self, *args, **kwargs)
        hit(self, 'after')
        return result
    return call


for _name in ENTRIES:
    if _name not in CrashPointLibvirtDriver.__dict__:
        setattr(CrashPointLibvirtDriver, _name, _public(_name))
_by_method = {}
for _method, _outer, _when, _point in INNER:
    _by_method.setdefault(_method, []).append((_outer, _when, _point))
for _method, _points in _by_method.items():
    # cleanup is public too: its inner point, then its entry point.
    setattr(CrashPointLibvirtDriver, _method,
            _inner(getattr(CrashPointLibvirtDriver, _method), _points))


class _UploadCrashPoint(object):
    """The image API, with a crash point once an upload has begun.

    The image is then ``saving`` in glance with part of its data, as when
    nova-compute dies during a real upload.
    """

    def __init__(self, image_api, driver):
        self._image_api = image_api
        self._driver = driver

    def __getattr__(self, name):
        return getattr(self._image_api, name)

    def update(self, context, image_id, metadata, data=None, **kwargs):
        instance_uuid = _current('snapshot')
        if data is not None and instance_uuid is not None:
            data = _ReadCrashPoint(data, self._driver, instance_uuid)
        return self._image_api.update(context, image_id, metadata, data,
                                      **kwargs)


class _ReadCrashPoint(object):

    def __init__(self, data, driver, instance_uuid):
        self._data = data
        self._driver = driver
        self._uuid = instance_uuid
        self._reads = 0

    def __getattr__(self, name):
        return getattr(self._data, name)

    def read(self, *args):
        chunk = self._data.read(*args)
        self._reads += 1
        if self._reads == 2:
            # One chunk is on its way to glance.
            self._driver.crash_point('snapshot:uploading', self._uuid)
        return chunk

    def __iter__(self):
        for i, chunk in enumerate(self._data):
            if i == 1:
                self._driver.crash_point('snapshot:uploading', self._uuid)
            yield chunk


def _block_job_crash_point(base):
    @functools.wraps(base)
    def is_job_complete(self):
        instance_uuid = _current('snapshot')
        driver = getattr(_inside, 'driver', None)
        if instance_uuid is not None and driver is not None:
            driver.crash_point('snapshot:block-job', instance_uuid)
        return base(self)
    return is_job_complete


libvirt_guest.BlockDevice.is_job_complete = _block_job_crash_point(
    libvirt_guest.BlockDevice.is_job_complete)


def _resize_dir_crash_point(base):
    @functools.wraps(base)
    def copy_image(*args, **kwargs):
        instance_uuid = _current('migrate_disk_and_power_off')
        driver = getattr(_inside, 'driver', None)
        if instance_uuid is not None and driver is not None:
            driver.crash_point('migrate_disk_and_power_off:resize-dir',
                               instance_uuid)
        return base(*args, **kwargs)
    return copy_image


libvirt_utils.copy_image = _resize_dir_crash_point(libvirt_utils.copy_image)
