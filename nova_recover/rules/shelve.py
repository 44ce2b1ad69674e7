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
SHELVING_IMAGE_UPLOADING, SHELVING_OFFLOADING or UNSHELVING.

States owned: task_state SHELVING, SHELVING_IMAGE_PENDING_UPLOAD,
SHELVING_IMAGE_UPLOADING, SHELVING_OFFLOADING and UNSHELVING, in any
vm_state.

A shelve that died before its snapshot was recorded has no image to
unshelve from, so it is rolled back: the instance returns to the
vm_state its guest shows (the guest keeps its disk; shelve only powered
it off) and the half-uploaded image is deleted. A volume-backed shelve
needs no image, so one whose guest is already gone is finished. An
offload starts only once the instance is SHELVED with its image
recorded, so it is finished when that image is in glance (asked as
nova's service user, as start-up's context has no token; see
glance_cleanup), and otherwise the guest is kept. The offload is re-run
with a clean shutdown, as the API asks for it. An unshelve that reached
this host settles where the guest is: ACTIVE if it runs here, else back
to the shelved state it started from. The shelved image is never deleted
here.
"""

from oslo_log import log as logging

from nova.accelerator import cyborg
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import exception

from nova_recover.recovery import base
from nova_recover.recovery import glance_cleanup

LOG = logging.getLogger(__name__)

SHELVING = frozenset([task_states.SHELVING,
                      task_states.SHELVING_IMAGE_PENDING_UPLOAD,
                      task_states.SHELVING_IMAGE_UPLOADING])
STATES = SHELVING | frozenset([task_states.SHELVING_OFFLOADING,
                               task_states.UNSHELVING])
SHELVED = frozenset([vm_states.SHELVED, vm_states.SHELVED_OFFLOADED])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    current = manager._get_power_state(instance)
    if instance.task_state in SHELVING:
        return _shelve(manager, context, instance, current)
    if instance.task_state == task_states.SHELVING_OFFLOADING:
        return _offload(manager, context, instance, current)
    return _unshelve(manager, context, instance, current)


def _shelve(manager, context, instance, current):
    task_state = instance.task_state
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
