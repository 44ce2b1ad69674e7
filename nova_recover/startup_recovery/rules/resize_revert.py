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

"""Undo a resize or cold migration on its source host.

Beyond the recover-stuck-state blueprint: what the resize rule
(resize.py) does with a resize that nova-compute did not finish, kept
apart from the rule's choice of which resizes are its own.

The old guest and its disk stay on the source host until the resize is
confirmed, so the source is where an interrupted resize can be undone:
when this host is the migration's source (always so for a same-host
resize, and for RESIZE_PREP and RESIZE_MIGRATING, during which the
instance still belongs to the source) the resize is reverted here as
finish_revert_resize would: any new guest on this host is destroyed
without its disks, driver.finish_revert_migration brings the old guest
back (unless it never left, see below), the old flavor returns, the
source allocations move back from the
migration consumer to the instance, the migration context and stashed
flavors go, and the migration ends ``error`` (``reverted`` when a revert
was what died). The destination host of a cross-host resize (task
RESIZE_MIGRATED, RESIZE_FINISH or RESIZE_REVERTING there) hands the
revert to the source as the API's revert does: it casts revert_resize
to itself, which destroys the new guest here once the service runs and
casts finish_revert_resize to the source, which still holds the old
guest's disk; the server ends ACTIVE or STOPPED
there, with its old flavor. Before, such a server went to ERROR, from
which its owner could neither revert nor confirm.

RESIZE_MIGRATING is saved before driver.migrate_disk_and_power_off, so
the old guest may still run, untouched. finish_revert_migration would
then break it: on libvirt, creating the domain fails on the running one,
and the clean-up after that unplugs the VIFs and disconnects the volumes
of the running guest. Where the driver can tell (guest_facts) that the
disk was never moved aside (libvirt: no ``<instance dir>_resize``) and
the guest runs, it is kept as it is and only the rest of the revert is
done; the server ends ACTIVE. A guest that is off, a moved disk, or a
driver that cannot tell, get finish_revert_migration as before.
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception
from nova import objects

from .. import base
from .. import guest_facts

LOG = logging.getLogger(__name__)

# Past driver.migrate_disk_and_power_off: the old guest was touched.
GUEST_TOUCHED = frozenset([task_states.RESIZE_MIGRATING,
                           task_states.RESIZE_MIGRATED,
                           task_states.RESIZE_FINISH,
                           task_states.RESIZE_REVERTING])
# The new guest may exist on the destination.
NEW_GUEST = frozenset([task_states.RESIZE_FINISH,
                       task_states.RESIZE_REVERTING])
# instance.flavor (and host, unless same-host) may be the new ones.
MOVED = frozenset([task_states.RESIZE_MIGRATED,
                   task_states.RESIZE_FINISH,
                   task_states.RESIZE_REVERTING])
MIGRATION_TYPES = frozenset(['resize', 'migration'])
TERMINAL = frozenset(['confirmed', 'reverted', 'error', 'failed',
                      'completed', 'cancelled', 'done'])


def migration_of(context, instance):
    """The migration record of the resize, or None."""
    if instance.migration_context:
        try:
            return objects.Migration.get_by_id_and_instance(
                context, instance.migration_context.migration_id,
                instance.uuid)
        except exception.MigrationNotFound:
            pass
    migrations = [m for m in objects.MigrationList.get_by_filters(
                      context, {'instance_uuid': instance.uuid})
                  if m.migration_type in MIGRATION_TYPES and
                  m.status not in TERMINAL]
    if not migrations:
        return None
    return max(migrations, key=lambda m: m.id)


def set_status(migration, status):
    if migration.status not in TERMINAL:
        migration.status = status
        migration.save()


def revert_here(manager, context, instance, migration):
    task_state = instance.task_state
    LOG.info('Resize interrupted by a nova-compute restart in %s, '
             'reverting it on the source host', task_state,
             instance=instance)
    if task_state in MOVED and instance.old_flavor:
        manager._set_instance_info(instance, instance.old_flavor)
        if instance.node != migration.source_node:
            node = objects.ComputeNode.get_by_host_and_nodename(
                context, migration.source_compute, migration.source_node)
            instance.node = node.hypervisor_hostname
            instance.compute_id = node.id
    try:
        if task_state in GUEST_TOUCHED:
            _restore_old_guest(manager, context, instance, migration)
        # Move the source allocations back from the migration consumer;
        # the instance's destination allocations are replaced.
        if manager.reportclient.get_allocations_for_consumer(
                context, migration.uuid):
            manager._revert_allocation(context, instance, migration)
    except Exception:
        set_status(migration, 'error')
        raise
    if instance.migration_context:
        # Undo what finish_resize applied (NUMA, PCI) before dropping it.
        instance.revert_migration_context()
        instance.drop_migration_context()
    instance.old_flavor = None
    instance.new_flavor = None
    instance.system_metadata.pop('old_vm_state', None)
    set_status(migration,
               'reverted' if task_state == task_states.RESIZE_REVERTING
               else 'error')
    current = manager._get_power_state(instance)
    vm_state = (vm_states.ACTIVE if current == power_state.RUNNING
                else vm_states.STOPPED)
    if not base.settle(instance, task_state, task_state=None,
                       vm_state=vm_state, power_state=current):
        return base.HANDLED
    return base.CONTINUE


def revert_from_destination(manager, context, instance, migration):
    """Send the server back to its source, as the API's revert does.

    A destination cannot reach the source's disk, but it need not: nova's
    revert_resize runs on the destination, destroys the new guest there,
    drops the destination's claim and casts finish_revert_resize to the
    source, which brings the old guest back from the disk it kept, with
    the old flavor and the source's allocations. The instance and the
    migration are put where the API's revert puts them (task
    RESIZE_REVERTING, migration ``reverting``, a revertResize action of
    its own), and revert_resize is cast to this host, as the API casts
    it: it cannot run during init_host, whose resource tracker knows no
    compute node yet, so it waits on the queue until this service
    consumes it. The source errors the server only if it cannot bring the
    old guest back.
    """
    task_state = instance.task_state
    if not instance.old_flavor:
        raise base.RecoveryFailed(
            operation=base.operation_of(instance),
            reason='the flavor to revert to is not recorded')
    LOG.info('Resize interrupted by a nova-compute restart in %(state)s on '
             'the destination host, handing the revert to the source host '
             '%(source)s', {'state': task_state,
                            'source': migration.source_compute},
             instance=instance)
    if (task_state != task_states.RESIZE_REVERTING and
            not base.settle(instance, task_state,
                            task_state=task_states.RESIZE_REVERTING)):
        return base.HANDLED
    migration.status = 'reverting'
    migration.save()
    manager.compute_rpcapi.revert_resize(
        base.rerun_context(context, instance,
                           instance_actions.REVERT_RESIZE),
        instance, migration, manager.host, None)
    return base.HANDLED


def _restore_old_guest(manager, context, instance, migration):
    network_info = instance.get_network_info()
    block_device_info = manager._get_instance_block_device_info(
        context, instance)
    if (instance.task_state in NEW_GUEST and
            migration.dest_compute == manager.host):
        # Same host: the resized guest may be defined here. Its disks
        # are the resized copy; the old ones wait in the resize backup.
        manager.driver.destroy(context, instance, network_info,
                               block_device_info, destroy_disks=False)
    if (instance.task_state == task_states.RESIZE_MIGRATING and
            _guest_untouched(manager, instance)):
        LOG.info('The resize died before it powered the guest off or moved '
                 'its disk, keeping the running guest', instance=instance)
        return
    if instance.old_flavor is None:
        # resize_instance records the old flavor only once
        # migrate_disk_and_power_off returns; until then instance.flavor
        # is still the old one, and libvirt's finish_revert_migration
        # reads it from old_flavor.
        instance.old_flavor = instance.flavor
    power_on = (instance.system_metadata.get('old_vm_state') !=
                vm_states.STOPPED)
    manager.driver.finish_revert_migration(
        context, instance, network_info, migration, block_device_info,
        power_on)


def _guest_untouched(manager, instance):
    """Whether migrate_disk_and_power_off had not begun on the guest:
    it still runs and its disk was not moved aside.
    """
    if manager._get_power_state(instance) != power_state.RUNNING:
        return False
    moved = guest_facts.for_driver(manager.driver).resize_disk_moved(instance)
    return moved is False
