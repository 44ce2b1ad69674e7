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

"""Clear an admin password change that nova-compute did not finish.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for UPDATING_PASSWORD.

States owned: task_state UPDATING_PASSWORD, in any vm_state.

Setting the admin password is an RPC call, so the API caller has already
been told it failed (the call timed out when nova-compute died). The new
password only ever travelled in that message, so there is nothing to
retry: the task is cleared, the guest is untouched and nova's normal
start-up path runs. The user can set the password again.
"""

from oslo_log import log as logging

from nova.compute import task_states

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)


STATES = registry.owned_by('password')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    LOG.info('Admin password change interrupted by a nova-compute restart, '
             'clearing the task state; the caller was already told it '
             'failed', instance=instance)
    if not base.settle(instance, task_states.UPDATING_PASSWORD,
                       task_state=None):
        return base.HANDLED
    return base.CONTINUE
