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

Mirrors "Clean IMAGE_SNAPSHOT_PENDING state on compute manager start up"
(nova commit 28d9467603, Change-Id
I8a4867f1f96d61e7d614d7d27c91f3d3e46f2400, review 63170; merged
2014-02-26), part of blueprint recover-stuck-state.

States owned: task_state IMAGE_SNAPSHOT_PENDING and IMAGE_SNAPSHOT, in
any vm_state.

Differs from the original: the original cleared the state and accepted
that a snapshot request still on the queue is lost. With the evidence
patch later in this series, a request that may still be queued is left
alone; a snapshot that reached this host is cleared by compare-and-swap
and its half-uploaded image deleted.

The task is cleared, the guest's power state recorded as it is (a cold
snapshot may have left it off) and nova's normal start-up path runs for
the instance.
The image the upload left queued or saving in glance is deleted first
(see glance_cleanup), and the createImage action gets an Error event
compute_snapshot_interrupted when its compute_snapshot_instance event
finished Success at the hand-off to nova's long-task pool (see
image_upload.clear): that Success is otherwise the snapshot's only trace.
"""

from oslo_log import log as logging


from .. import registry
from . import image_upload

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('snapshot')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    LOG.info('Snapshot interrupted by a nova-compute restart, clearing '
             'task state %s', instance.task_state, instance=instance)
    return image_upload.clear(manager, context, instance)
