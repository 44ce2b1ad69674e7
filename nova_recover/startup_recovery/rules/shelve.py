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

"""Settle a shelve, shelve offload or unshelve that nova-compute dropped.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for SHELVING, SHELVING_IMAGE_PENDING_UPLOAD,
SHELVING_IMAGE_UPLOADING, SHELVING_OFFLOADING or UNSHELVING, and errors
out (as a build) an unshelve that died while spawning; this rule settles
that one too (below).

States owned: task_state SHELVING, SHELVING_IMAGE_PENDING_UPLOAD,
SHELVING_IMAGE_UPLOADING, SHELVING_OFFLOADING and UNSHELVING, in any
vm_state, and task_state SPAWNING on a SHELVED_OFFLOADED instance (an
unshelve spawning; the ``build`` rule owns every other SPAWNING).

A shelve whose snapshot finished uploading but was not yet recorded is
completed, as _shelve_instance would have after the upload: the image it
uploaded (found by what api.shelve gave it, and dated no earlier than
the shelve's action; see _uploaded_image) is recorded as the shelved
image, the guest powered off and the instance SHELVED, or offloaded
straight away if shelved_offload_time is 0. A shelve that died before
its snapshot was complete has no image to unshelve from, so it is rolled
back: the instance returns to the vm_state its guest shows (the guest
keeps its disk; shelve only powered it off) and the half-uploaded image
is deleted. An image-backed shelve whose guest is gone is not
completed, whatever glance holds (the offload that would finish it
powers the guest off first, which a missing guest fails): it goes to
ERROR as before. A volume-backed shelve
needs no image, so one whose guest is already gone is finished. An
offload starts only once the instance is SHELVED with its image
recorded, so it is finished when that image is in glance (asked as
nova's service user, as start-up's context has no token; see
glance_cleanup), and otherwise the guest is kept. The offload is re-run
with a clean shutdown, as the API asks for it. An unshelve that reached
this host under UNSHELVING settles where the guest is: ACTIVE if it runs
here, else back to the shelved state it started from; the shelved image
is kept.

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
from oslo_utils import timeutils

from nova.accelerator import cyborg
from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
import nova.conf
from nova import exception
from nova import objects

from .. import base
from .. import glance_cleanup
from .. import registry

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Instance actions read, newest first, to find the shelve's.
ACTIONS_READ = 50

SHELVING = frozenset([task_states.SHELVING,
                      task_states.SHELVING_IMAGE_PENDING_UPLOAD,
                      task_states.SHELVING_IMAGE_UPLOADING])
# SPAWNING is owned only on a SHELVED_OFFLOADED instance (see owns()).
STATES = registry.owned_by('shelve')
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
    if instance.task_state in SHELVING:
        return _shelve(manager, context, instance, current)
    if instance.task_state == task_states.SHELVING_OFFLOADING:
        return _offload(manager, context, instance, current)
    if instance.task_state == task_states.SPAWNING:
        return _unshelve_spawning(manager, context, instance, current)
    return _unshelve(manager, context, instance, current)


def _shelve(manager, context, instance, current):
    task_state = instance.task_state
    if current != power_state.NOSTATE:
        image_id = _uploaded_image(manager, context, instance)
        if image_id is not None:
            return _complete_shelve(manager, context, instance, current,
                                    image_id)
    if current == power_state.NOSTATE:
        if compute_utils.is_volume_backed_instance(context, instance):
            # A volume-backed shelve is an offload straight away; its
            # data is in the volumes, so the destroyed guest is finished.
            LOG.info('Shelve of a volume-backed instance interrupted by a '
                     'nova-compute restart after the guest was destroyed, '
                     'finishing the offload', instance=instance)
            return _finish_offload(manager, context, instance)
        glance_cleanup.delete_unfinished_images(manager, context, instance)
        raise base.RecoveryFailed(
            operation=base.operation_of(instance),
            reason='the guest is gone and the shelve image never completed')
    # Before the task state is cleared, so no new upload can own the
    # image being deleted.
    glance_cleanup.delete_unfinished_images(manager, context, instance)
    vm_state = base.VM_STATE_OF_GUEST.get(current, vm_states.STOPPED)
    if instance.vm_state not in SHELVED:
        # Nothing of a shelved instance is valid on an unshelved one.
        compute_utils.remove_shelved_keys_from_system_metadata(instance)
    LOG.info('Shelve interrupted by a nova-compute restart before the '
             'snapshot was recorded, returning the instance to %s',
             vm_state, instance=instance)
    if not base.settle(instance, task_state, task_state=None,
                       vm_state=vm_state, power_state=current):
        return base.HANDLED
    return base.CONTINUE


def _uploaded_image(manager, context, instance):
    """The id of the complete image this shelve uploaded, or None.

    _shelve_instance records the image only after the upload, so a
    restart in between leaves it in glance, active and named by nothing.
    It is the image api.shelve created for this shelve: made by nova for
    the instance (compute_utils.create_image: properties instance_uuid
    and image_type snapshot), owned by the instance's project, named
    '<display_name>-shelved', active, and created no earlier than the
    shelve's instance action, which the API records before it creates
    the image (glance gives whole seconds). Anything else, such as an
    older user snapshot or an image of another project carrying the same
    properties, must never become what the server is unshelved from:
    unless exactly one image qualifies, or if glance or the actions
    cannot be read, None, and the shelve is rolled back.
    """
    try:
        images = manager.image_api.get_all(
            glance_cleanup.image_context(context),
            filters={'instance_uuid': instance.uuid})
    except Exception:
        LOG.warning('Could not list the images of the instance to find '
                    'the one its interrupted shelve uploaded',
                    exc_info=True, instance=instance)
        return None
    name = '%s-shelved' % instance.display_name
    # Glance filters by property, but a filter it ignores must not widen
    # what is adopted: every image is checked here as well.
    images = [image for image in images
              if image.get('status') == 'active' and
              image.get('name') == name and
              glance_cleanup.made_for(image, instance, ('snapshot',))]
    if not images:
        return None
    started = _shelve_started(context, instance)
    if started is None:
        return None
    images = [image for image in images
              if _created_at(image) is not None and
              _created_at(image) >= started]
    if len(images) != 1:
        LOG.warning('Found %d complete images that the interrupted shelve '
                    'may have uploaded; adopting none', len(images),
                    instance=instance)
        return None
    return images[0]['id']


def _shelve_started(context, instance):
    """When the newest shelve action started, in whole seconds, or None.

    Under a SHELVING* task state it is this shelve's: the API saves the
    task state, then records the action, then creates the image, and a
    new shelve needs the task state cleared. One round trip, through
    nova-conductor; the shelve is among the newest actions, as only
    API-only ones (lock, unlock) can follow it.
    """
    try:
        action_list = objects.InstanceActionList.get_by_instance_uuid(
            context, instance.uuid, limit=ACTIONS_READ)
    except Exception:
        LOG.warning('Could not read the shelve action of the instance to '
                    'date its image', exc_info=True, instance=instance)
        return None
    for action in action_list:
        if action.action == instance_actions.SHELVE:
            started = action.start_time or action.created_at
            if started is None:
                return None
            # Glance dates an image in whole seconds.
            return timeutils.normalize_time(started).replace(microsecond=0)
    return None


def _created_at(image):
    created = image.get('created_at')
    if isinstance(created, str):
        created = timeutils.parse_isotime(created)
    if created is None:
        return None
    return timeutils.normalize_time(created)


def _complete_shelve(manager, context, instance, current, image_id):
    """Finish the shelve as _shelve_instance does after its upload.

    The owner asked for a shelve and glance holds its image whole:
    rolling back would leave that image billed and named by nothing. The
    guest, if it still runs, is powered off as the shelve would have
    done it (cleanly, as the API asks; at once if paused, as nova does).
    Other unfinished images of the instance are deleted while the task
    state still fences off new image requests. The shelve is recorded
    with a compare-and-swap on the task state the restart left, and
    offloaded now if shelved_offload_time is 0, as nova does.
    """
    task_state = instance.task_state
    if current != power_state.SHUTDOWN:
        manager._power_off_instance(
            context, instance,
            clean_shutdown=current != power_state.PAUSED)
        current = manager._get_power_state(instance)
    glance_cleanup.delete_unfinished_images(manager, context, instance)
    offload = CONF.shelved_offload_time == 0
    LOG.info('Shelve interrupted by a nova-compute restart after its '
             'image %s was uploaded, finishing it', image_id,
             instance=instance)
    instance.system_metadata['shelved_at'] = timeutils.utcnow().isoformat()
    instance.system_metadata['shelved_image_id'] = image_id
    instance.system_metadata['shelved_host'] = manager.host
    if not base.settle(instance, task_state, vm_state=vm_states.SHELVED,
                       task_state=(task_states.SHELVING_OFFLOADING if offload
                                   else None),
                       power_state=current):
        return base.HANDLED
    if offload:
        return _finish_offload(manager, context, instance)
    # CONTINUE: nova's start-up path takes a SHELVED guest from here.
    return base.CONTINUE


def _offload(manager, context, instance, current):
    image_id = instance.system_metadata.get('shelved_image_id')
    if (compute_utils.is_volume_backed_instance(context, instance) or
            _image_active(manager, context, instance, image_id)):
        LOG.info('Shelve offload interrupted by a nova-compute restart, '
                 'finishing it', instance=instance)
        return _finish_offload(manager, context, instance)
    if current == power_state.NOSTATE:
        raise base.RecoveryFailed(
            operation=base.operation_of(instance),
            reason='the guest is gone and shelved image %s is not '
                   'available' % image_id)
    LOG.warning('Shelve offload interrupted by a nova-compute restart and '
                'shelved image %s is not available; keeping the guest',
                image_id, instance=instance)
    base.settle(instance, task_states.SHELVING_OFFLOADING, task_state=None,
                vm_state=vm_states.SHELVED, power_state=current)
    return base.HANDLED


def _image_active(manager, context, instance, image_id):
    if not image_id:
        return False
    try:
        # Start-up's admin context carries no token, which glance refuses:
        # read the image as nova's service user, as the clean-up does.
        image = manager.image_api.get(
            glance_cleanup.image_context(context), image_id)
    except exception.ImageNotFound:
        return False
    return image.get('status') == 'active'


def _finish_offload(manager, context, instance):
    accel_uuids = []
    if instance.flavor.extra_specs.get('accel:device_profile'):
        accel_uuids = cyborg.get_client(
            context).get_arq_uuids_for_instance(instance)
    # Saves with expected_task_state SHELVING or SHELVING_OFFLOADING. The
    # user asked for a shelve or a shelve offload, which the API sends
    # with clean_shutdown=True: a guest still running gets its chance to
    # shut down cleanly, as it would have had the first time.
    manager._shelve_offload_instance(context, instance,
                                     clean_shutdown=True,
                                     accel_uuids=accel_uuids)
    return base.HANDLED


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
