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

"""Finish a delete that nova-compute started and did not finish.

Mirrors "Cleanup 'deleting' instances on restart" (nova commit
0252d0981a, Change-Id Iad18e9a7c6cb8e272e67a82284127ad895441dcf, review
55660, Closes-Bug 1247174, Partial-Bug 1248563; merged 2014-01-25) and
its follow-up "Delete ERROR+DELETING VMs during compute startup." (nova
commit 556ab844c8, Change-Id Ie0a47958eb0fb58307902437a95634d5f54f74f3,
bug 1281324; merged 2014-03-11), part of blueprint recover-stuck-state.

States owned: task_state DELETING in any vm_state (ERROR and
SOFT_DELETED included, which stock nova 34 skips for SOFT_DELETED), and
vm_state DELETED whose row is not yet marked deleted.

Differs from the originals: besides DELETING in any vm_state, a
vm_state DELETED row that the dead process did not mark deleted is
finished too, and the delete goes through nova's own _delete_instance so
that quotas, allocations and volumes are released as for any delete.

A delete is the one recovery that removes data, and it is only ever the
delete that the user asked for.
"""

from oslo_log import log as logging

from nova.compute import vm_states
from nova import objects

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)


STATES = registry.owned_by('deleting')
# A row whose delete got as far as vm_state DELETED, whatever its task.
OWNED_VM_STATES = frozenset([vm_states.DELETED])


def owns(instance):
    return (instance.task_state in STATES or
            instance.vm_state in OWNED_VM_STATES)


def recover(manager, context, instance):
    if instance.vm_state == vm_states.DELETED:
        LOG.info('Completing a deletion interrupted by a nova-compute '
                 'restart', instance=instance)
        manager._complete_partial_deletion(context, instance)
        return base.HANDLED
    delete(manager, context, instance)
    return base.HANDLED


def delete(manager, context, instance):
    """Re-run the user's delete with the instance's block devices."""
    LOG.info('Restarting a deletion interrupted by a nova-compute restart',
             instance=instance)
    instance.obj_load_attr('metadata')
    instance.obj_load_attr('system_metadata')
    bdms = objects.BlockDeviceMappingList.get_by_instance_uuid(
        context, instance.uuid)
    manager._delete_instance(context, instance, bdms)
