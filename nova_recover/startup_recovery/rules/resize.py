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

"""Revert a resize or cold migration that nova-compute did not finish.

Beyond the recover-stuck-state blueprint: stock nova leaves
RESIZE_MIGRATED, RESIZE_FINISH, RESIZE_REVERTING and RESIZE_CONFIRMING
alone, clears RESIZE_PREP and RESIZE_MIGRATING (the latter after
driver.finish_revert_migration), and leaves the migration record, its
context and the move's allocations behind (bug 1836369). This rule owns
all six task states, in any vm_state.

The source host is where an interrupted resize is undone
(resize_revert.py): reverted here when this host is the migration's
source, handed to the source from the destination otherwise.
RESIZE_CONFIRMING is not set by nova 34; if seen, the resized guest is
kept and the confirm can be asked for again.

A confirm that died here shows in no task_state: see resize_confirm.py."""

from oslo_log import log as logging

from nova.compute import task_states
from nova import exception
from nova import objects

from .. import base
from .. import registry
from . import resize_revert

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('resize')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    task_state = instance.task_state
    if task_state == task_states.RESIZE_CONFIRMING:
        return _confirming(context, instance)
    migration = resize_revert.migration_of(context, instance)
    if migration is None:
        if task_state == task_states.RESIZE_PREP:
            # No move was ever recorded: nothing to undo but the task.
            LOG.info('Resize interrupted by a nova-compute restart before '
                     'a migration was recorded, clearing task state',
                     instance=instance)
            if not base.settle(instance, task_state, task_state=None):
                return base.HANDLED
            return base.CONTINUE
        raise base.RecoveryFailed(operation=base.operation_of(instance),
                                  reason='no migration record found')
    if migration.source_compute == manager.host:
        return resize_revert.revert_here(manager, context, instance, migration)
    return resize_revert.revert_from_destination(manager, context,
                                                 instance, migration)


def _confirming(context, instance):
    LOG.info('Resize confirm interrupted by a nova-compute restart, '
             'keeping the resized instance for a new confirm',
             instance=instance)
    try:
        migration = objects.Migration.get_by_instance_and_status(
            context, instance.uuid, 'confirming')
    except exception.MigrationNotFoundByStatus:
        migration = None
    if not base.settle(instance, task_states.RESIZE_CONFIRMING,
                       task_state=None):
        return base.HANDLED
    if migration is not None:
        # The API confirms only a 'finished' migration.
        migration.status = 'finished'
        migration.save()
    return base.CONTINUE
