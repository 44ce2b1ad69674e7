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

"""Clear an image upload that died with nova-compute.

Mirrors "Recover from IMAGE-* state on compute manager start-up" (nova
commit 56b4d81e1a, Change-Id I665c0ec735968aa0d7553dfc0cfb2373f93451f6,
review 56223; merged 2013-12-03), part of blueprint recover-stuck-state.

States owned: task_state IMAGE_PENDING_UPLOAD and IMAGE_UPLOADING, in
any vm_state. Nova-compute itself sets both, so seeing one at start-up
means the upload ran in the old process and died with it. Also
IMAGE_BACKUP, which the API sets: the engine only hands it over once the
evidence shows that backup_instance started here, and a backup that died
before its upload leaves the guest as unharmed as a snapshot does.

Differs from the original: the task is cleared by compare-and-swap and
the guest's power state recorded as it is, and the image the dead upload
left in glance is deleted, so no half-written image outlives the crash.
The original also changed the API and the glance image service; that is
not needed on current nova.

The task is cleared and nova's normal start-up path runs for the
instance, which records the guest's power state as it is, with two
exceptions. A live snapshot on libvirt copies the disk with a block job
on a domain it has undefined for the copy; dying then leaves the guest
running but transient, gone for good once it stops. Where the driver
says so (guest_facts), the copy is aborted and the domain defined again
first, as the snapshot's end would have. A cold snapshot of a running
or paused guest is, on libvirt, a managed save: the guest's memory goes
to disk and the domain is off until the snapshot starts it again from
that memory. Dying in between leaves the domain off with its memory
saved, which a later start (a hard reboot) would throw away. Where the
driver says the memory is saved (guest_facts) and the instance was
ACTIVE or PAUSED, the guest is started from it, paused if it was paused,
and the server is as before the snapshot. A SUSPENDED instance's saved
memory is its suspend and stays; a guest that a cold snapshot left off
without saved memory, or on a driver that cannot tell, is recorded
STOPPED.
The image the upload left queued or saving in glance is deleted first
(see glance_cleanup).

A snapshot's own event cannot tell its owner that it died: nova 33 and
34's snapshot_instance finish compute_snapshot_instance with Success when
they hand the snapshot to their long-task pool. Once the task is cleared,
an Error event compute_snapshot_interrupted is written on the createImage
action, unless the upload had finished: an IMAGE_UPLOADING whose image
nothing deleted as unfinished. The rule tells the gates so
(base.tell_owner), which write it (events.note_snapshot_interrupted)
only where that Success was written at the hand-off; a backup hands
nothing off. nova 31 snapshots in the request's own worker, whose event
the dead process left open: the gates finish it as Error, or as Success
when the upload had finished (base.SNAPSHOT_FINISHED), which is what
nova 31 writes once the same snapshot returns.
"""

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states

from .. import base
from .. import glance_cleanup
from .. import guest_facts
from .. import registry

LOG = logging.getLogger(__name__)

STATES = registry.owned_by('image_upload')
# No vm_state is this rule's whatever the task state.
OWNED_VM_STATES = frozenset()

# What a guest that a cold snapshot shut off reports.
COLD = frozenset([power_state.SHUTDOWN, power_state.CRASHED])


def owns(instance):
    return instance.task_state in STATES


def recover(manager, context, instance):
    LOG.info('Image upload interrupted by a nova-compute restart, '
             'clearing task state %s', instance.task_state,
             instance=instance)
    return clear(manager, context, instance)


def clear(manager, context, instance):
    """Clear an image task that died and record the guest as it now is.

    A cold snapshot shuts the guest off for the copy and starts it again
    afterwards, so dying in between leaves it off. Where it saved the
    guest's memory to do so, the guest is started from it, as the
    snapshot would have; otherwise an ACTIVE or PAUSED instance becomes
    STOPPED, which the user can start. A SUSPENDED one stays so, as a
    suspended guest shows as shut off on libvirt and its saved memory is
    its suspend.
    """
    task_state = instance.task_state
    # While the task state still fences off new image requests.
    deleted = glance_cleanup.delete_unfinished_images(manager, context,
                                                      instance)
    _end_live_snapshot(manager, instance)
    if (instance.vm_state in (vm_states.ACTIVE, vm_states.PAUSED) and
            not _restore_saved_memory(manager, context, instance)):
        return base.HANDLED
    current = manager._get_power_state(instance)
    fields = {'task_state': None, 'power_state': current}
    if (current in COLD and
            instance.vm_state in (vm_states.ACTIVE, vm_states.PAUSED)):
        fields['vm_state'] = vm_states.STOPPED
    if not base.settle(instance, task_state, **fields):
        return base.HANDLED
    # Before IMAGE_UPLOADING nothing was uploaded. Under IMAGE_UPLOADING
    # the upload may have finished and only the record of it died: glance
    # then has the whole image, active, which is the snapshot the owner
    # asked for and its event's Success tells of (nova 31's event is
    # still open and gets that Success); an unfinished image deleted
    # above says it did not finish. A backup hands nothing off: its
    # event is still open, and closed as interrupted.
    if task_state == task_states.IMAGE_BACKUP:
        return base.CONTINUE
    if task_state != task_states.IMAGE_UPLOADING or deleted:
        base.tell_owner(manager, instance, base.SNAPSHOT_INTERRUPTED)
    else:
        base.tell_owner(manager, instance, base.SNAPSHOT_FINISHED)
    return base.CONTINUE


def _end_live_snapshot(manager, instance):
    """End a live snapshot's copy that nova-compute died in.

    The guest runs on, but undefined: once it stops, nothing of it is
    left for a start. Failing to end the copy leaves the guest as it is,
    running, so it is logged and the instance is recovered all the same.
    """
    facts = guest_facts.for_driver(manager.driver)
    if not facts.left_live_snapshot(instance):
        return
    try:
        facts.end_live_snapshot(instance)
    except Exception:
        LOG.exception('Could not end the interrupted live snapshot\'s '
                      'copy; the guest keeps running', instance=instance)


def _restore_saved_memory(manager, context, instance):
    """Start a guest that a cold snapshot left off with its memory saved.

    The snapshot would have started it once its copy was taken; starting
    it any other way (nova's start is a hard reboot) loses the memory.
    If it cannot be started the saved memory stays, and the instance
    goes to ERROR rather than to a STOPPED whose start would drop it;
    False then.
    """
    facts = guest_facts.for_driver(manager.driver)
    if not facts.has_saved_memory(instance):
        return True
    paused = instance.vm_state == vm_states.PAUSED
    LOG.info('The interrupted snapshot left the guest off with its memory '
             'saved, starting it from there%s',
             ' paused' if paused else '', instance=instance)
    try:
        facts.restore_saved_memory(context, instance, paused)
    except Exception as exc:
        LOG.exception('Could not start the guest from its saved memory',
                      instance=instance)
        base.set_error(context, instance, instance.task_state,
                       base.interrupted(
                           instance,
                           reason='the guest could not be started from the '
                                  'memory the snapshot saved, which is '
                                  'kept: %s' % exc))
        return False
    return True
