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

"""Clear a snapshot that was pending when nova-compute stopped.

Mirrors "Recover from IMAGE_SNAPSHOT_PENDING state on compute manager
start-up", part of blueprint recover-stuck-state (the blueprint links
bug #1228804). Change-Id: not known to us; nova's release ChangeLog
keeps subjects only and does not list this one. Stock nova 34 clears
these states in the same start-up block as the IMAGE-* ones.

States owned: task_state IMAGE_SNAPSHOT_PENDING and IMAGE_SNAPSHOT, in
any vm_state.

The task is cleared, the guest's power state recorded as it is (a cold
snapshot may have left it off) and nova's normal start-up path runs for
the instance.
The image the upload left queued or saving in glance is deleted first
(see glance_cleanup).
"""

from oslo_log import log as logging

from nova.compute import task_states

from nova_recover import image

LOG = logging.getLogger(__name__)

STATES = frozenset([task_states.IMAGE_SNAPSHOT_PENDING,
                    task_states.IMAGE_SNAPSHOT])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    LOG.info('Snapshot interrupted by a nova-compute restart, clearing '
             'task state %s', instance.task_state, instance=instance)
    return image.clear(manager, context, instance)
