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

"""Bring back the original disk after a rescue or unrescue was cut short.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for RESCUING or UNRESCUING.

States owned: task_state RESCUING and UNRESCUING, in any vm_state.

No driver API call says whether the guest that runs is the rescue guest
or the original one (the fake driver keeps no rescue state at all, and a
libvirt rescue guest runs under the instance's own domain name), so a
rescue is never assumed to have completed: recording RESCUED for an
original guest would make a later unrescue fail, and re-running the
rescue could take the rescue guest for the original. Both states are
therefore settled by driver.unrescue, which puts the instance back on
its own disk and drops any rescue disk (libvirt restores the domain it
saved before rescuing). The instance ends ACTIVE, as after an unrescue,
or STOPPED when the guest stays off, and the user can rescue again. If
unrescue fails the rescue disk may still be attached, so the instance
goes to ERROR with a fault that says so instead of looking healthy.

libvirt's unrescue needs the original domain's XML that its rescue
writes to unrescue.xml before it touches the guest, and deletes once the
original guest is back, before the rescue disks. Where the driver can
tell (guest_facts) that unrescue.xml is missing and the defined guest is
not the rescue guest (no disk named ``*.rescue``), the original guest is
the one there: a rescue died before writing the file (nova's
rescue_instance powers the guest off first, so it may be off), or an
unrescue died after deleting it. unrescue would only fail, so it is not
called; any rescue disk that unrescue left is deleted (nova's copy for
the rescue, not user data), and the instance settles as above, ACTIVE
or, where the rescue had powered the guest off, STOPPED. Only a rescue
guest without unrescue.xml cannot be put back: ERROR, the guest left
as it is for the operator.
"""

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import vm_states

from .. import base
from .. import guest_facts
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('rescue')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    task_state = instance.task_state
    LOG.info('%s interrupted by a nova-compute restart, restoring the '
             'original disk', base.operation_of(instance).capitalize(),
             instance=instance)
    facts = guest_facts.for_driver(manager.driver)
    if facts.has_unrescue_record(instance) is False:
        rescue_guest = facts.runs_rescue_guest(instance)
        if rescue_guest:
            LOG.error('The rescue guest runs and unrescue.xml is gone: the '
                      'original guest cannot be restored', instance=instance)
            base.set_error(context, instance, task_state, base.interrupted(
                instance, reason='the rescue guest runs and the record of '
                                 'the original guest that unrescue needs is '
                                 'gone'))
            return base.HANDLED
        if rescue_guest is False:
            # The original guest: nothing to unrescue.
            facts.remove_rescue_leftovers(instance)
            return _settle(manager, instance, task_state)
    try:
        manager.driver.unrescue(context, instance)
    except Exception as exc:
        raise base.RecoveryFailed(
            operation=base.operation_of(instance),
            reason='unrescue failed, a rescue disk may still be attached: '
                   '%s' % exc)
    return _settle(manager, instance, task_state)


def _settle(manager, instance, task_state):
    current = manager._get_power_state(instance)
    vm_state = (vm_states.ACTIVE if current == power_state.RUNNING
                else vm_states.STOPPED)
    if not base.settle(instance, task_state, task_state=None,
                       vm_state=vm_state, power_state=current):
        return base.HANDLED
    return base.CONTINUE
