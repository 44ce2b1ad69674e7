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

"""Clear an image upload that died with nova-compute.

Mirrors "Recover from IMAGE-* state on compute manager start-up", part
of blueprint recover-stuck-state (the blueprint links bug #1228804).
Change-Id: not known to us; nova's release ChangeLog keeps the subject
only.

States owned: task_state IMAGE_PENDING_UPLOAD and IMAGE_UPLOADING, in
any vm_state. Nova-compute itself sets both, so seeing one at start-up
means the upload ran in the old process and died with it. Also
IMAGE_BACKUP, which the API sets: the engine only hands it over once the
evidence shows that backup_instance started here, and a backup that died
before its upload leaves the guest as unharmed as a snapshot does.

The guest is unharmed by a snapshot, so the task is cleared and nova's
normal start-up path runs for the instance.
The image the upload left queued or saving in glance is deleted first
(see glance_cleanup).
"""

from oslo_log import log as logging

from nova.compute import task_states

from nova_recover import base
from nova_recover import glance_cleanup

LOG = logging.getLogger(__name__)

STATES = frozenset([task_states.IMAGE_PENDING_UPLOAD,
                    task_states.IMAGE_UPLOADING,
                    task_states.IMAGE_BACKUP])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    LOG.info('Image upload interrupted by a nova-compute restart, '
             'clearing task state %s', instance.task_state,
             instance=instance)
    # While the task state still fences off new image requests.
    glance_cleanup.delete_unfinished_images(manager, context, instance)
    if not base.settle(instance, instance.task_state, task_state=None):
        return base.HANDLED
    return base.CONTINUE
