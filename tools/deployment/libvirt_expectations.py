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
"""The exact end of every operation on libvirt, on compute-a (ours).

The owner's end is the fake driver's (expectations.py) wherever libvirt
shows the same thing; this module says only where it differs, and why.
The fields are those of expectations.py, with the guest read from the
domains of each host's own libvirtd (libvirt_ops.py) and ``files``
checked: nothing may be left in an instances directory but what nova
itself keeps (a resize's ``<uuid>_resize`` on the source until the
confirm).

Guest states: ``running``, ``paused``, ``shutdown`` (shut off),
``saved`` (shut off with a managed-save image: a suspended server, or
a cold snapshot's guest), with ``+job`` for a block job still running
and ``+transient`` for a domain whose persistent definition is gone.
On libvirt a suspended server's power state is ``shutdown``: nova reads
the managed-saved domain as shut off.
"""

import expectations

E = expectations.E
died = expectations.died
ev = expectations.ev
honoured = expectations.honoured
lost = expectations.lost
INTERRUPTED = expectations.INTERRUPTED

SUSPENDED = dict(vm_state='suspended', power='shutdown', guest='here:saved')
SNAPSHOT_DIED = ev('snapshot_instance=Success',
                   'snapshot_interrupted=Error' + INTERRUPTED)


def _base(table):
    return {name: want._replace(files='-') for name, want in table.items()}


DIED = _base(expectations.DIED)
del DIED['change-password']
DIED.update({
    # Died in the live snapshot's block copy: the job is aborted and the
    # domain defined again (the live snapshot made it transient), the
    # image deleted.
    'snapshot': E(images='-', events=SNAPSHOT_DIED, files='-'),
    # Died after the cold snapshot's managed save: the guest is started
    # from its saved memory, as the snapshot would have.
    'snapshot-cold': E(images='-', events=SNAPSHOT_DIED, files='-'),
    'suspend': died('suspend_instance', reruns=1, files='-', **SUSPENDED),
    # unrescue.xml written, the original guest still running: the
    # original is restored from it, unrescue.xml goes.
    'rescue-late': died('rescue_instance', files='-'),
    # unrescue.xml deleted: the original guest runs; nothing to undo.
    'unrescue-late': died('unrescue_instance', files='-'),
    # The source died renaming <uuid>_resize back and starting the old
    # domain: it reverts there again, the new guest on the other host
    # already gone.
    'revert-source': E(files='-', events=ev(
        'revert_resize=Success',
        'finish_revert_resize=Error' + INTERRUPTED)),
    # libvirt finishes a peer-to-peer live migration on its own once it
    # has begun: the guest runs on the destination, whose post-migration
    # steps (port bindings, allocations, the instance's host) only the
    # two computes together could run, and the source is alone at its
    # start-up. ERROR, with a fault that says where the guest runs.
    'live-migration': E(
        vm_state='error', power='nostate', guest='other:running',
        files='-', events=ev(
            'check_can_live_migrate_destination=Success',
            'check_can_live_migrate_source=Success',
            'live_migration=Success', 'live_migration_abort=Error:other',
            'pre_live_migration=Success'),
        fault='live migration interrupted by nova-compute restart: the '
              'guest is not on this host; it may run on compute-b'),
    # The destination died before starting the new domain: the revert
    # is handed to the source (other), which renames its _resize back.
    'resize-dest': E(host='other', guest='other:running', reruns=1,
                     files='-', events=ev(
                         'prep_resize=Success', 'resize_instance=Success',
                         'finish_resize=Error' + INTERRUPTED)),
})

QUEUED = _base(expectations.QUEUED)
QUEUED.update({
    'suspend': honoured('suspend_instance', files='-', **SUSPENDED),
    # A rescued server keeps unrescue.xml and its rescue disk until the
    # unrescue.
    'rescue': QUEUED['rescue']._replace(files='here:rescue,unrescue.xml'),
    # The source keeps its disks in <uuid>_resize until the confirm.
    'resize': QUEUED['resize']._replace(files='here:resize'),
})

LOST_ENDS = _base(expectations.LOST_ENDS)
LOST_ENDS.update({
    'resume': lost(files='-', **SUSPENDED),
    'unrescue': LOST_ENDS['unrescue']._replace(
        files='here:rescue,unrescue.xml'),
    'resize-revert': LOST_ENDS['resize-revert']._replace(
        files='other:resize'),
})

RECOVERY = _base(expectations.RECOVERY)

TABLES = {
    'died': DIED,
    'queued': QUEUED,
    'lost': LOST_ENDS,
    'recovery': RECOVERY,
}
