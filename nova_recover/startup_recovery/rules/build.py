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

"""Error out a build that nova-compute did not finish.

Mirrors "Recover from build state on compute manager start-up" (nova
commit 0e3d2622ae, Change-Id I7b116d8154036c43b0feb23f5669f52358408d2b,
review 47836, Closes-Bug 1197024; merged 2013-12-03), part of blueprint
recover-stuck-state.

States owned: task_state SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING
and SPAWNING, and vm_state BUILDING whatever its task_state, except
task_state DELETING (the ``deleting`` rule's) and task_state SPAWNING on
a SHELVED_OFFLOADED instance: that is an unshelve, which spawns the
offloaded server under SPAWNING, and the ``unshelve`` rule settles it.

Differs from the original: the save is a compare-and-swap on the task
state found, so a delete requested meanwhile wins, and an instance fault
tells the user which build died; the original set ERROR silently.

A spawn is not restartable halfway: the instance goes to ERROR with a
fault that says why, so the user sees it and can delete or rebuild it.
A delete requested during the build wins: the API records it as task_state
DELETING, which the ``deleting`` rule owns; this rule never claims it.
"""

from oslo_log import log as logging

from nova.compute import task_states
from nova.compute import vm_states

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('build')
# Owned whatever the task_state (but DELETING), as the engine's index says.
OWNED_VM_STATES = frozenset([vm_states.BUILDING])


def owns(instance):
    # A delete requested during the build is the deleting rule's, whether
    # or not that rule is installed: never error out what the user asked
    # to delete.
    if instance.task_state == task_states.DELETING:
        return False
    # An unshelve spawns an offloaded server under SPAWNING: it is no
    # build, and its data is safe in the shelved image or its volumes.
    if (instance.task_state == task_states.SPAWNING and
            instance.vm_state == vm_states.SHELVED_OFFLOADED):
        return False
    return (instance.vm_state in OWNED_VM_STATES or
            instance.task_state in STATES)


def recover(manager, context, instance):
    LOG.info('Build interrupted by a nova-compute restart, setting the '
             'instance to ERROR', instance=instance)
    base.set_error(context, instance, instance.task_state,
                   base.interrupted(instance))
    return base.HANDLED
