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

"""Finish or roll back a shelve offload that nova-compute dropped.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for SHELVING_OFFLOADING.

States owned: task_state SHELVING_OFFLOADING, in any vm_state.

An offload starts only once the instance is SHELVED with its image
recorded, so it is finished when that image is in glance (asked as
nova's service user, as start-up's context has no token; see
glance_cleanup), and otherwise the guest is kept and the instance stays
SHELVED. The offload is re-run with a clean shutdown, as the API asks
for it. A shelve with shelved_offload_time 0 offloads through here too
(finish_offload).
"""

from oslo_log import log as logging

from nova.accelerator import cyborg
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import exception

from .. import base
from .. import glance_cleanup
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('shelve_offload')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    return _offload(manager, context, instance,
                    manager._get_power_state(instance))


def _offload(manager, context, instance, current):
    image_id = instance.system_metadata.get('shelved_image_id')
    if (compute_utils.is_volume_backed_instance(context, instance) or
            _image_active(manager, context, instance, image_id)):
        LOG.info('Shelve offload interrupted by a nova-compute restart, '
                 'finishing it', instance=instance)
        return finish_offload(manager, context, instance)
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


def finish_offload(manager, context, instance):
    """Offload the shelved server as nova does, with a clean shutdown."""
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
