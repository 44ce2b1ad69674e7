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

"""End an evacuation to this host that nova-compute did not finish.

Beyond the recover-stuck-state blueprint, with the rebuild rule
(rebuild.py), whose host pass this is.

An evacuation is a rebuild on another host, the destination, while the
instance still names the source (down) until it ends; neither host's
start-up saw one that the destination's death interrupted, and the
server kept its REBUILD task forever with no guest. The destination
owns an evacuation made to it, so its start-up ends it
(interrupted_evacuations, end_evacuation) in a state from which the
admin can evacuate again.
"""

from oslo_log import log as logging

from nova import exception
from nova.i18n import _
from nova import objects

from .. import base
from .. import contracts
from . import rebuild

LOG = logging.getLogger(__name__)


# The statuses of an evacuation that has not ended: nova-api creates its
# migration 'accepted', the destination's claim makes it 'pre-migrating'
# and rt.finish_evacuation 'done'; a failure makes it 'failed'.
EVACUATING = ('accepted', 'pre-migrating')
# What the instance loads for end_evacuation: the network info to destroy
# a half-spawned guest, the migration context to tell this evacuation's.
_EXPECTED_ATTRS = ['info_cache', 'system_metadata', 'migration_context']


class EvacuationInterrupted(exception.NovaException):
    msg_fmt = _("Evacuation to %(host)s interrupted by a nova-compute "
                "restart; the server can be evacuated again")


def interrupted_evacuations(manager, context):
    """The evacuations to this host left unfinished, with their instances.

    One Migration query per start-up: nova's migration filters have no
    dest_compute, so 'host' (source or destination) is asked and the
    migrations from this host are dropped. One Instance read per match.
    An instance that is on this host already (the evacuation got that
    far) is init_instance's; one without a REBUILD task no longer runs
    it; and one whose migration context names another migration is in a
    newer move than this record: none of them is returned.
    """
    migrations = objects.MigrationList.get_by_filters(
        context, {'host': manager.host, 'migration_type': 'evacuation',
                  'status': list(EVACUATING)})
    found = []
    for migration in migrations:
        if migration.dest_compute != manager.host:
            continue
        try:
            instance = objects.Instance.get_by_uuid(
                context, migration.instance_uuid,
                expected_attrs=_EXPECTED_ATTRS)
        except exception.InstanceNotFound:
            continue
        move = instance.migration_context
        if (instance.host == manager.host or
                instance.task_state not in rebuild.STATES or
                (move is not None and move.migration_id != migration.id)):
            continue
        found.append((instance, migration))
    return found


def end_evacuation(manager, context, instance, migration):
    """End an evacuation to this host that died here; it can be retried.

    What nova's rebuild_instance does when an evacuation fails here, and
    no more: the migration goes 'failed' first, because the source's
    start-up destroys the guest (and, without shared storage, its disk)
    of an evacuation still 'accepted', 'pre-migrating' or 'done'
    (_destroy_evacuated_instances): so the source keeps the user's guest
    whatever happens next. A half-spawned guest on this host is
    destroyed without its disks, which on shared storage are the
    user's. This host's node leaves the instance's allocations, as
    rt.delete_allocation_for_evacuated_instance does, through the report
    client, as the resource tracker knows no node during init_host; the
    claim's migration context goes. The instance stays on the source, in
    ERROR (from which the API accepts an evacuation) with a fault naming
    this host, by compare-and-swap on the task it was found in.
    """
    task_state = instance.task_state
    LOG.warning('Evacuation to this host interrupted by a nova-compute '
                'restart in task state %s, ending it so that it can be '
                'retried', task_state, instance=instance)
    migration.status = 'failed'
    migration.save()
    if manager.driver.instance_exists(instance):
        manager.driver.destroy(
            context, instance, instance.get_network_info(),
            manager._get_instance_block_device_info(context, instance),
            destroy_disks=False)
    if migration.dest_node:
        nodes = [objects.ComputeNode.get_by_host_and_nodename(
            context, manager.host, migration.dest_node)]
    else:
        # Died before its claim: the scheduler's allocation may be there.
        nodes = objects.ComputeNodeList.get_all_by_host(context,
                                                        manager.host)
    for node in nodes:
        manager.reportclient.remove_provider_tree_from_instance_allocation(
            context, instance.uuid, node.uuid)
    if instance.migration_context is not None:
        instance.drop_migration_context()
    if not base.set_error(context, instance, task_state,
                          EvacuationInterrupted(host=manager.host)):
        return base.LOST_RACE
    return base.HANDLED


# The evacuations to this host that its death interrupted: their instance
# still names the source host, so no _init_instance here sees them.
EVACUATIONS = contracts.HostPass(find=interrupted_evacuations,
                                 recover=end_evacuation)
