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

"""Finish or roll back a shelve that nova-compute dropped.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for SHELVING,
SHELVING_IMAGE_PENDING_UPLOAD or SHELVING_IMAGE_UPLOADING.

States owned: task_state SHELVING, SHELVING_IMAGE_PENDING_UPLOAD and
SHELVING_IMAGE_UPLOADING, in any vm_state. The offload that follows is
shelve_offload.py's, the way back unshelve.py's.

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
ERROR as before. A volume-backed shelve needs no image, so one whose
guest is already gone is finished.
"""

from oslo_log import log as logging
from oslo_utils import timeutils

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
import nova.conf
from nova import objects

from .. import base
from .. import glance_cleanup
from .. import registry
from . import shelve_offload

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# Instance actions read, newest first, to find the shelve's.
ACTIONS_READ = 50

SHELVING = frozenset([task_states.SHELVING,
                      task_states.SHELVING_IMAGE_PENDING_UPLOAD,
                      task_states.SHELVING_IMAGE_UPLOADING])
STATES = registry.owned_by('shelve')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()
SHELVED = frozenset([vm_states.SHELVED, vm_states.SHELVED_OFFLOADED])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    return _shelve(manager, context, instance,
                   manager._get_power_state(instance))


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
            return shelve_offload.finish_offload(manager, context, instance)
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
        return shelve_offload.finish_offload(manager, context, instance)
    # CONTINUE: nova's start-up path takes a SHELVED guest from here.
    return base.CONTINUE
