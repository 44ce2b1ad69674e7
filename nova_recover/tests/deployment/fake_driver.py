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
"""nova's fake driver with guests that outlive nova-compute, and crash points.

The stock FakeDriver keeps its guests in a dict, so a SIGKILL of
nova-compute takes the "hypervisor" with it and start-up sees no guest at
all. A real hypervisor's guests keep running, and recovery has to agree
with them; this driver keeps every guest (uuid, name, power state, flavor)
in a JSON file under ``[DEFAULT]state_path``, written after each change.

Crash points (see crash_points.py) at the entry of each driver method
of _CALLS: a rule's ``state`` (running, shutdown, paused, suspended), if
given, is what the guest is set to and persisted before the point dies
or parks.

A slow start-up: ``[persistent_fake] start_delay`` (seconds, 0 by
default) makes the first get_available_resource of the process wait that
long. nova-compute makes that call from pre_start_hook, after init_host
(so after start-up has looked at every instance) and before it starts
its RPC server, so the delay holds back the RPC server and nothing else,
as a slow placement or a host with many instances would.

Loaded as ``compute_driver = persistent_fake.PersistentFakeDriver``
through tools/deployment/pythonpath/sitecustomize.py, because nova 34
only loads drivers from the nova.virt package.
"""

import io
import json
import os
import threading
import time
import uuid

from oslo_config import cfg
from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova import exception
from nova.image import glance
from nova import objects
from nova.virt import deployment_crash_points as crash_points
from nova.virt import fake
from nova.virt import node

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Registered once the configuration is parsed, as a driver module is
# imported only then; oslo.config allows that for options that are not
# on the command line.
OPTS = [
    cfg.IntOpt('start_delay', default=0, min=0,
               help='Seconds the first get_available_resource of the '
                    'process waits: a start-up slow to reach its RPC '
                    'server (nova-compute calls it from pre_start_hook).'),
]
CONF.register_opts(OPTS, group='persistent_fake')

STATES = {
    'running': power_state.RUNNING,
    'shutdown': power_state.SHUTDOWN,
    'paused': power_state.PAUSED,
    'suspended': power_state.SUSPENDED,
}
STATE_NAMES = {v: k for k, v in STATES.items()}
NODE_NAMESPACE = uuid.UUID('5b1e4c1e-8a43-4c55-9f6e-0d6a39c1f0a1')

# Methods whose entry is a crash point and whose end is a state save. The
# value is the guest power state the call leaves, None for "as FakeDriver
# leaves it".
_CALLS = {
    'spawn': None,
    'destroy': None,
    'reboot': None,
    'power_off': None,
    'power_on': None,
    'pause': 'paused',
    'unpause': 'running',
    'suspend': 'suspended',
    'resume': 'running',
    'rescue': 'running',
    'unrescue': None,
    'set_admin_password': None,
    'migrate_disk_and_power_off': 'shutdown',
    'finish_migration': None,
    'finish_revert_migration': None,
    'confirm_migration': None,
    'live_migration': None,
    'post_live_migration_at_destination': None,
    'cleanup': None,
    'soft_delete': None,
    'restore': None,
}


def node_uuid(nodename):
    """The node's uuid, the same in every process, unlike uuidsentinel's."""
    return str(uuid.uuid5(NODE_NAMESPACE, nodename))


class PersistentFakeDriver(fake.FakeDriver):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only=read_only)
        self._lock = threading.Lock()
        self._dir = CONF.state_path
        self._guests_file = os.path.join(self._dir, 'fake-guests.json')
        self._crash = crash_points.CrashPoints(self._dir)
        self._delayed = False
        self._load()

    # Guest state on disk.

    def _load(self):
        try:
            with open(self._guests_file) as f:
                guests = json.load(f)
        except FileNotFoundError:
            guests = {}
        for guest_uuid, guest in guests.items():
            self.instances[guest_uuid] = fake.FakeInstance(
                guest['name'], STATES[guest['state']], guest_uuid)
        LOG.info('Persistent fake driver: %d guests from %s',
                 len(guests), self._guests_file)

    def _save(self):
        with self._lock:
            guests = {
                guest_uuid: {'name': guest.name,
                             'state': STATE_NAMES.get(guest.state,
                                                      'shutdown')}
                for guest_uuid, guest in list(self.instances.items())}
            tmp = self._guests_file + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(guests, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._guests_file)

    def _set_state(self, instance_uuid, state_name):
        guest = self.instances.get(instance_uuid)
        if guest is not None:
            guest.state = STATES[state_name]

    # Crash points.

    def crash_point(self, method, instance_uuid):
        """Die or park here if crash.json names this call."""
        def set_state(rule):
            if rule.get('state'):
                self._set_state(instance_uuid, rule['state'])
                self._save()
        self._crash.hit(method, instance_uuid, on_match=set_state)

    # Node identity that survives a restart.

    def init_host(self, host):
        super().init_host(host)
        # A real driver's node uuid comes from nova.virt.node, which writes
        # <state_path>/compute_id on first start and insists on it after
        # that; FakeDriver's never does, so a restart would be refused.
        if node.read_local_node_uuid() is None:
            node.write_local_node_uuid(node_uuid(self._nodes[0]))

    def get_available_resource(self, nodename):
        if not self._delayed:
            self._delayed = True
            delay = CONF.persistent_fake.start_delay
            if delay:
                LOG.warning('Slow start-up: waiting %d s in the first '
                            'get_available_resource, before the RPC server '
                            'starts', delay)
                time.sleep(delay)
                LOG.warning('Slow start-up: done waiting')
        resources = super().get_available_resource(nodename)
        if resources:
            resources['uuid'] = node_uuid(nodename)
        return resources

    def get_nodenames_by_uuid(self, refresh=False):
        return {node_uuid(n): n for n in self.get_available_nodes()}

    # A snapshot that really uploads, as libvirt's does, so that glance
    # sees queued -> saving -> active.

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        self.crash_point('snapshot', instance.uuid)
        metadata = {'disk_format': 'raw', 'container_format': 'bare'}
        glance.API().update(context, image_id, metadata,
                            io.BytesIO(b'persistent-fake snapshot\n'))


def _wrap(name, leaves):
    base = getattr(fake.FakeDriver, name)

    def call(self, *args, **kwargs):
        instance = kwargs.get('instance')
        if instance is None:
            instance = next((a for a in args
                             if isinstance(a, objects.Instance)), None)
        instance_uuid = getattr(instance, 'uuid', None)
        self.crash_point(name, instance_uuid)
        result = base(self, *args, **kwargs)
        if leaves and instance_uuid:
            self._set_state(instance_uuid, leaves)
        self._save()
        return result

    call.__name__ = name
    call.__doc__ = base.__doc__
    return call


for _name, _leaves in _CALLS.items():
    setattr(PersistentFakeDriver, _name, _wrap(_name, _leaves))
