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

"""Error out a rebuild that nova-compute did not finish.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING
or REBUILD_SPAWNING on an ERROR instance, and on ACTIVE or STOPPED it
sets ERROR without saying why.

States owned: task_state REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING and
REBUILD_SPAWNING on vm_state ACTIVE, STOPPED or ERROR (the states the API
accepts a rebuild or an evacuation from).

A rebuild destroys the guest and spawns it again from an image; halfway
through there may be no guest, or one with the wrong disks, and nothing
to resume from. The instance goes to ERROR with a fault naming the
rebuild, so the user knows to rebuild again or delete it. A rebuild of an
ERROR instance gets the fault too, instead of keeping the task forever.
An evacuation to this host that died here has a pass of its own
(evacuation.py).
"""

from oslo_log import log as logging

from nova.compute import vm_states

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('rebuild')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()

VM_STATES = frozenset([vm_states.ACTIVE, vm_states.STOPPED, vm_states.ERROR])


def owns(instance):
    return instance.task_state in STATES and instance.vm_state in VM_STATES


def recover(manager, context, instance):
    LOG.info('Rebuild interrupted by a nova-compute restart in task state '
             '%s, setting the instance to ERROR', instance.task_state,
             instance=instance)
    # The rebuild may have destroyed the guest already: record what is
    # there, with the same compare-and-swap.
    instance.power_state = manager._get_power_state(instance)
    base.set_error(context, instance, instance.task_state,
                   base.interrupted(instance))
    return base.HANDLED
