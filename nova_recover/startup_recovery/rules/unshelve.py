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

"""Settle an unshelve that nova-compute dropped.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for UNSHELVING, and errors out (as a
build) an unshelve that died while spawning; this rule settles that one
too.

States owned: task_state UNSHELVING in any vm_state, and task_state
SPAWNING on a SHELVED_OFFLOADED instance (an unshelve spawning; the
``build`` rule owns every other SPAWNING).

An unshelve that reached this host under UNSHELVING settles where the
guest is: ACTIVE if it runs here, else back to the shelved state it
started from; the shelved image is kept.

An unshelve that died while spawning (SPAWNING on a SHELVED_OFFLOADED
instance) is settled as _unshelve_instance would have: a guest that runs
here is the unshelved server, so the instance is recorded ACTIVE with
the fields nova sets after a spawn, the shelved keys go and the shelved
snapshot is deleted, as nova deletes it once the server runs again. With
no running guest, what nova does when the spawn fails is done instead:
this host's allocations are dropped, the volume connections terminated
and the host cleared, and the instance stays SHELVED_OFFLOADED with its
shelved image, to be unshelved again. A half-spawned guest that is not
running is destroyed first; its disks came from the shelved image, and
volumes are only disconnected. Placement or cinder refusing the
clean-up is logged and does not stop the rest: the user's data is
intact either way. In both ends the image_ref names the original image
again, not the shelved snapshot that the spawn may have saved in its
place; if that original is unknown the snapshot is kept.
"""

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import objects

from .. import base
from .. import glance_cleanup
from .. import registry

LOG = logging.getLogger(__name__)

# SPAWNING is owned only on a SHELVED_OFFLOADED instance (see owns()).
STATES = registry.owned_by('unshelve')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()
SHELVED = frozenset([vm_states.SHELVED, vm_states.SHELVED_OFFLOADED])


def owns(instance):
    if instance.task_state == task_states.SPAWNING:
        # _unshelve_instance spawns an offloaded server under SPAWNING;
        # any other SPAWNING is a build.
        return instance.vm_state == vm_states.SHELVED_OFFLOADED
    return instance.task_state in STATES


def recover(manager, context, instance):
    current = manager._get_power_state(instance)
    if instance.task_state == task_states.SPAWNING:
        return _unshelve_spawning(manager, context, instance, current)
    return _unshelve(manager, context, instance, current)


def _unshelve(manager, context, instance, current):
    if current == power_state.RUNNING:
        # The guest came back on this host: the unshelve is done apart
        # from the record. The shelved image stays in glance.
        LOG.info('Unshelve interrupted by a nova-compute restart and the '
                 'guest runs, recording it as active; shelved image %s is '
                 'kept', instance.system_metadata.get('shelved_image_id'),
                 instance=instance)
        compute_utils.remove_shelved_keys_from_system_metadata(instance)
        vm_state = vm_states.ACTIVE
    else:
        LOG.info('Unshelve interrupted by a nova-compute restart, leaving '
                 'the instance %s', instance.vm_state, instance=instance)
        vm_state = (instance.vm_state if instance.vm_state in SHELVED
                    else vm_states.SHELVED)
    if not base.settle(instance, task_states.UNSHELVING, task_state=None,
                       vm_state=vm_state, power_state=current):
        return base.HANDLED
    if vm_state == vm_states.SHELVED_OFFLOADED:
        # No guest here for nova's start-up path to plug or resume.
        return base.HANDLED
    return base.CONTINUE


def _unshelve_spawning(manager, context, instance, current):
    image_id = instance.system_metadata.get('shelved_image_id')
    _restore_image_ref(instance, image_id)
    if current == power_state.RUNNING:
        return _spawned(manager, context, instance, image_id)
    return _spawn_undone(manager, context, instance, current)


def _restore_image_ref(instance, image_id):
    """Name the original image again, as _unshelve_instance does.

    The spawn sets image_ref to the shelved snapshot, and the resource
    claim may have saved it. The API recorded the original in
    image_base_image_ref when it shelved the server.
    """
    if not image_id or instance.image_ref != image_id:
        return
    original = instance.system_metadata.get('image_base_image_ref')
    if original:
        instance.image_ref = original
    else:
        LOG.warning('image_ref names shelved image %s and the original '
                    'image is not recorded; leaving it', image_id,
                    instance=instance)


def _spawned(manager, context, instance, image_id):
    LOG.info('Unshelve interrupted by a nova-compute restart after the '
             'guest was spawned, recording it as active',
             instance=instance)
    # power_state, vm_state ACTIVE, task_state None, config drive and
    # launched_at, as after a spawn.
    manager._update_instance_after_spawn(instance)
    compute_utils.remove_shelved_keys_from_system_metadata(instance)
    if not base.settle(instance, task_states.SPAWNING):
        return base.HANDLED
    # Only once the record says the server runs here: until then the
    # snapshot is what the server would be unshelved from again. Never
    # the image that image_ref still names.
    if image_id and instance.image_ref != image_id:
        manager._delete_snapshot_of_shelved_instance(
            glance_cleanup.image_context(context), instance, image_id)
    # CONTINUE: nova's start-up path plugs the VIFs of the guest.
    return base.CONTINUE


def _spawn_undone(manager, context, instance, current):
    LOG.info('Unshelve interrupted by a nova-compute restart before the '
             'guest ran, leaving the instance shelved offloaded',
             instance=instance)
    bdms = objects.BlockDeviceMappingList.get_by_instance_uuid(
        context, instance.uuid)
    if current != power_state.NOSTATE:
        # The half-spawned guest holds nothing of the user's that the
        # shelved image or the volumes do not: the driver removes its
        # disks and disconnects, never deletes, its volumes.
        block_device_info = manager._get_instance_block_device_info(
            context, instance, bdms=bdms)
        manager.driver.destroy(context, instance, instance.get_network_info(),
                               block_device_info)
    # Before the task state is cleared, as nova does it: a new unshelve
    # may claim on another host from then on, and force deletes every
    # allocation of the instance.
    try:
        manager.reportclient.delete_allocation_for_instance(
            context, instance.uuid, force=True)
    except Exception:
        # They stay in placement, against this host, for the operator to
        # remove: the resource tracker leaves alone the allocations of an
        # instance without a host. ERROR would not free them either, and
        # would keep the user from unshelving a server that lost nothing.
        LOG.warning('Could not delete the allocations of the interrupted '
                    'unshelve on this host; they must be removed by hand',
                    exc_info=True, instance=instance)
    try:
        # Cinder, like glance, refuses start-up's context without a token.
        manager._terminate_volume_connections(
            glance_cleanup.image_context(context), instance, bdms)
    except Exception:
        LOG.warning('Could not terminate the volume connections of the '
                    'interrupted unshelve on this host', exc_info=True,
                    instance=instance)
    manager._nil_out_instance_obj_host_and_node(instance)
    base.settle(instance, task_states.SPAWNING, task_state=None,
                vm_state=vm_states.SHELVED_OFFLOADED,
                power_state=power_state.NOSTATE)
    # No guest here for nova's start-up path.
    return base.HANDLED
