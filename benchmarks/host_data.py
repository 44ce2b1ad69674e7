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

"""The benchmark's host: its instances, in the database's own process.

Whoever owns the database builds and resets the data directly: the
benchmark itself when the conductor runs in-process, the conductor's
process (conductor_process.py) otherwise. Nothing here runs as
nova-compute.
"""

from nova.compute import instance_actions
from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova.db.main import api as db_api
from nova.db.main import models
from nova.network import model as network_model
from nova import objects

HOST = 'host1'
# Candidates: API-set states whose stock and overlay recovery stays on
# this host and leaves the guest as it is.
CANDIDATES = [
    (task_states.IMAGE_SNAPSHOT_PENDING, instance_actions.CREATE_IMAGE,
     'snapshot_instance'),
    (task_states.PAUSING, instance_actions.PAUSE, 'pause_instance'),
    (task_states.SUSPENDING, instance_actions.SUSPEND, 'suspend_instance'),
    (task_states.RESIZE_PREP, instance_actions.RESIZE, 'prep_resize'),
]


class HostData(object):
    """N instances on HOST, one in ``every`` of them a candidate."""

    def __init__(self, every):
        self.every = every
        self.context = nova_context.get_admin_context()
        self.flavor = objects.Flavor.get_by_name(self.context, 'm1.small')
        self.created = 0
        # uuid: the transitional task_state it is put back in.
        self.candidates = {}

    def populate(self, size):
        """Create instances up to ``size``; returns the candidates' count.

        Half the candidates of each kind have a compute event on this
        host (their request reached it and died); half have none (their
        request may still be queued).
        """
        every = self.every
        for n in range(self.created, size):
            task_state = action = method = None
            if n % every == every // 2:
                task_state, action, method = CANDIDATES[
                    (n // every) % len(CANDIDATES)]
            instance = objects.Instance(
                self.context, host=HOST, project_id='p',
                user_id='u', vm_state=vm_states.ACTIVE,
                power_state=power_state.RUNNING, task_state=task_state,
                flavor=self.flavor, instance_type_id=self.flavor.id,
                memory_mb=self.flavor.memory_mb, vcpus=self.flavor.vcpus,
                root_gb=self.flavor.root_gb, system_metadata={},
                metadata={}, info_cache=objects.InstanceInfoCache(
                    network_info=network_model.NetworkInfo()))
            instance.create()
            if task_state is not None:
                ctxt = nova_context.RequestContext('u', 'p', is_admin=True)
                objects.InstanceAction.action_start(
                    ctxt, instance.uuid, action, want_result=False)
                if (n // (every * len(CANDIDATES))) % 2 == 0:
                    objects.InstanceActionEvent.event_start(
                        ctxt, instance.uuid, 'compute_' + method,
                        want_result=False, host=HOST)
                self.candidates[instance.uuid] = task_state
        self.created = max(self.created, size)
        return len(self.candidates)

    def restore(self):
        """Put every candidate back as the crash left it.

        Its transitional state, and its events open again: the overlay
        finishes the events of what it recovered, and every start-up
        measured must find what the first one found.
        """
        for uuid, task_state in self.candidates.items():
            db_api.instance_update(self.context, uuid, {
                'task_state': task_state, 'vm_state': vm_states.ACTIVE,
                'power_state': power_state.RUNNING})
        _reopen_events(self.context, list(self.candidates))


@db_api.pick_context_manager_writer
def _reopen_events(context, uuids):
    actions = context.session.query(models.InstanceAction.id).filter(
        models.InstanceAction.instance_uuid.in_(uuids))
    context.session.query(models.InstanceActionEvent).filter(
        models.InstanceActionEvent.action_id.in_(
            actions.scalar_subquery())).update(
        {'finish_time': None, 'result': None, 'traceback': None},
        synchronize_session=False)
    context.session.query(models.InstanceAction).filter(
        models.InstanceAction.instance_uuid.in_(uuids)).update(
        {'message': None}, synchronize_session=False)
