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

"""Confirm again a resize whose confirm died on the source host.

Beyond the recover-stuck-state blueprint, with the resize rule
(resize.py), whose host pass this is.

A confirm shows in no task_state: nova-api sets the migration
'confirming' and casts confirm_resize to the source, and the server
stays RESIZED with no task (on the destination, unless the resize was
to the same host). A source that died in confirm_resize left it so for
good, and the API refuses both a confirm and a revert of it. The
source's start-up finds such confirms by their migration
(interrupted_confirms) and runs nova's confirm again (confirm).
"""

from oslo_log import log as logging

from nova.compute import instance_actions
from nova.compute import vm_states
from nova import exception
from nova import objects

from .. import base
from .. import contracts
from . import resize_revert

LOG = logging.getLogger(__name__)


def interrupted_confirms(manager, context):
    """The confirms left 'confirming' on this (source) host, with their
    instances.

    One Migration query per start-up, rather than a read per RESIZED
    instance: the server of a resize to another host is on the
    destination, so this host's start-up never sees it as one of its
    instances. One Instance read per match. A cross-cell confirm is the
    conductor's, and an instance no longer RESIZED without a task (one
    being deleted, whose delete confirms the resize) is left alone.
    """
    migrations = objects.MigrationList.get_by_filters(
        context, {'source_compute': manager.host, 'status': 'confirming'})
    found = []
    for migration in migrations:
        if (migration.migration_type not in resize_revert.MIGRATION_TYPES or
                migration.cross_cell_move):
            continue
        try:
            instance = objects.Instance.get_by_uuid(
                context, migration.instance_uuid)
        except exception.InstanceNotFound:
            continue
        if (instance.vm_state != vm_states.RESIZED or
                instance.task_state is not None):
            continue
        found.append((instance, migration))
    return found


def confirm(manager, context, instance, migration):
    """Finish the confirm the user asked for, with nova's confirm_resize.

    The confirm reached this host and died in it (the caller checked its
    compute_confirm_resize event), so the old guest may be half cleaned
    up; nova's confirm_resize does each step again, and it is what sets
    the server ACTIVE, or STOPPED if its guest is off, the migration
    'confirmed', and frees the source's allocation and claim. It needs
    the resource tracker, which knows no compute node during init_host,
    so it is cast to this host, as the API casts it, under a
    confirmResize action of its own, and runs once this service consumes
    its queue. The migration stays 'confirming', which confirm_resize
    expects.
    """
    LOG.info('Resize confirm interrupted by a nova-compute restart on the '
             'source host, confirming it again', instance=instance)
    manager.compute_rpcapi.confirm_resize(
        base.rerun_context(context, instance,
                           instance_actions.CONFIRM_RESIZE),
        instance, migration, manager.host)
    return base.HANDLED


# The confirms that died on this source host: their instance shows no
# task_state and is on the destination, so no _init_instance here sees
# them.
CONFIRMS = contracts.HostPass(find=interrupted_confirms, recover=confirm,
                              request='confirm_resize')
