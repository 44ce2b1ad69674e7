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

"""Reset a live migration that nova-compute did not finish.

Beyond the recover-stuck-state blueprint: no upstream change; extends
stock nova's live-migration reset at start-up
(ComputeManager._reset_live_migration), which aborts a ``running``
migration, marks it ``error`` and clears the task state.

Related upstream: "Prevent clean-up of migrating instances on compute
init" (nova commit 1469c8e142, Change-Id
Ia8c67acf93d71af868907f0711dcc1dfe103560c, Closes-Bug 1319797), which
kept start-up from destroying the guest of an instance that is being
live-migrated.

States owned: task_state MIGRATING, in any vm_state.

The instance is still recorded on this host, the source, so its guest
is expected here. Stock nova leaves behind what the destination's claim
and the conductor set up: the migration context, migration records in
statuses other than ``running`` (accepted, preparing, queued,
post-migrating), and the source allocations held by the migration
consumer while the instance holds the destination's. After nova's reset
those records go to ``error``, the migration context is dropped and,
with the guest running here, the source allocations move back to the
instance, as a rolled-back live migration leaves them. A guest that is
no longer on this host may be running on the destination: nothing more
is changed and the instance goes to ERROR with a fault naming it.
"""

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import objects

from .. import base
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('live_migration')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()
TERMINAL = frozenset(['completed', 'error', 'failed', 'cancelled', 'done',
                      'confirmed', 'reverted'])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    migrations = sorted(
        (m for m in objects.MigrationList.get_by_filters(
            context, {'instance_uuid': instance.uuid})
         if m.migration_type == 'live-migration' and
         m.status not in TERMINAL),
        key=lambda m: m.id)
    # Aborts a running migration, marks it error and clears the task
    # state with expected_task_state MIGRATING.
    manager._reset_live_migration(context, instance)
    for migration in migrations:
        migration.status = 'error'
        migration.save()
    current = manager._get_power_state(instance)
    if current == power_state.NOSTATE:
        dest = migrations[-1].dest_compute if migrations else None
        base.set_error(context, instance, None, base.interrupted(
            instance, task_states.MIGRATING,
            reason='the guest is not on this host; it may run on %s'
                   % dest))
        return base.HANDLED
    if (current == power_state.PAUSED and
            instance.vm_state == vm_states.ACTIVE):
        # Paused for the switch-over. Left paused: the guest may already
        # run on the destination, and two running copies are worse than a
        # paused one the user can unpause.
        base.settle(instance, None, vm_state=vm_states.PAUSED,
                    power_state=current)
    for migration in migrations:
        if manager.reportclient.get_allocations_for_consumer(
                context, migration.uuid):
            manager._revert_allocation(context, instance, migration)
    if instance.migration_context:
        instance.drop_migration_context()
    return base.CONTINUE
