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
"""The crash scenarios' operations and observations on libvirt.

On libvirt each operation dies at a half-state inside LibvirtDriver
(nova_recover/tests/deployment/libvirt_driver.py lists the crash points),
where the fake driver's die at a method's entry. Five more operations
die: four at half-states that only libvirt has, one in a driver call
the fake driver's scenarios never die in (a revert's
finish_revert_migration on the source). What a server's guest is, is
read from outside nova: its domain on each host's own libvirtd (virsh in
that host's namespace) and the files nova leaves in the host's instances
directory.
"""

import collections
import shlex
import time

import scenarios

# Where each operation of scenarios.OPS dies on libvirt.
POINTS = {
    'snapshot': 'snapshot:block-job',
    'backup': 'snapshot:uploading',
    'reboot-soft': 'reboot',
    'reboot-hard': 'reboot:destroyed',
    'stop': 'power_off',
    'start': 'power_on',
    'pause': 'pause',
    'unpause': 'unpause',
    'suspend': 'suspend',
    'resume': 'resume',
    'rescue': 'rescue:unrescue-xml-written',
    'unrescue': 'unrescue:destroyed',
    'rebuild': 'spawn',
    # shelve powers the guest off, then snapshots it cold (no managed
    # save: it is off) and uploads.
    'shelve': 'snapshot:uploading',
    'shelve-offload': 'destroy:destroyed',
    'unshelve': 'spawn',
    'resize': 'migrate_disk_and_power_off:resize-dir',
    'resize-revert': 'destroy',
    'live-migration': 'live_migration:job',
    'delete': 'destroy:destroyed',
}
# libvirt's set_admin_password needs a guest agent, which the tiny guest
# has not: the request fails at once, with no half-state.
LEFT_OUT = {'change-password'}
CREATE_IMAGE = {'createImage': {'name': '@NAME@'}}
RESIZE_AWAY = ({'resize': {'flavorRef': '@FLAVOR2@'}}, 'VERIFY_RESIZE')
EXTRA = [
    # A cold snapshot (the rule's "cold") managed-saves the guest.
    scenarios.Op('snapshot-cold', [], CREATE_IMAGE,
                 'snapshot:managed-saved', action='createImage',
                 image='@NAME@', cold=True),
    scenarios.Op('rescue-late', [], {'rescue': {}}, 'rescue:destroyed',
                 action='rescue'),
    scenarios.Op('unrescue-late', [scenarios.RESCUE], {'unrescue': None},
                 'unrescue:xml-deleted', action='unrescue'),
    # Booted here and resized to the other host; the revert's
    # finish_revert_resize dies here, the source, in the driver's
    # finish_revert_migration.
    scenarios.Op('revert-source', [RESIZE_AWAY], {'revertResize': None},
                 'finish_revert_migration', action='revertResize',
                 moved=True),
    # Booted on the other host, resized to this one, which dies before
    # it starts the new domain.
    scenarios.Op('resize-dest', [], {'resize': {'flavorRef': '@FLAVOR2@'}},
                 'finish_migration:before-start', action='resize',
                 boot_other=True),
]
OPS = [op._replace(method=POINTS[op.name]) for op in scenarios.OPS
       if op.name not in LEFT_OUT] + EXTRA
# Died-only: the half-states of EXTRA are what a crash leaves, not
# requests that wait on a queue.
DIED_ONLY = {op.name for op in EXTRA}

# A domain in this state agrees with a server whose power state is that.
AGREES = {'running': 'running', 'paused': 'paused', 'shutdown': 'shutdown',
          'saved': 'shutdown', 'crashed': 'crashed'}

# One virsh call per state, not one per domain: a host has some 45.
_LIST = r'''
v() { virsh -q -c qemu:///system "$@"; }
for f in state-running state-paused state-shutoff with-managed-save \
         transient; do
    for u in $(v list --all --uuid --$f); do echo "$f|$u"; done
done
for u in $(v list --all --uuid --transient); do
    v blockjob "$u" vda --info 2>/dev/null | grep -q . && echo "job|$u"
done
cd %(instances)s && for f in *_resize */unrescue.xml */*.rescue; do
    [ -e "$f" ] && echo "file|$f"
done
true
'''
FLAGS = {'state-running': 'running', 'state-paused': 'paused',
         'state-shutoff': 'shutdown'}
# How long one look at a host serves every server of an observation.
FRESH = 3.0
_looks = {}


def look(dep, host):
    """host's domains and the files of interest in its instances dir.

    ({uuid: state}, {uuid: [file kinds]}). state is running, paused or
    shutdown, ``saved`` for a shut-off domain with a managed-save image,
    with ``+transient`` for a domain with no persistent definition (a
    live snapshot's block copy undefines it while it runs) and ``+job``
    for a block job still running on its disk.
    """
    now = time.monotonic()
    cached = _looks.get(host)
    if cached and now - cached[0] < FRESH:
        return cached[1]
    out = dep.in_host(host, '/bin/sh', '-c', _LIST % {
        'instances': shlex.quote(dep.instances)})
    domains, files, marks = {}, {}, collections.defaultdict(set)
    for line in out.splitlines():
        kind, _sep, what = line.partition('|')
        if kind == 'file':
            uuid = what.split('/')[0].replace('_resize', '')
            files.setdefault(uuid, []).append(
                'resize' if what.endswith('_resize') else
                'unrescue.xml' if what.endswith('unrescue.xml') else
                'rescue')
        elif kind in FLAGS:
            domains[what] = FLAGS[kind]
        elif kind:
            marks[what].add(kind)
    for uuid in domains:
        if domains[uuid] == 'shutdown' and 'with-managed-save' in marks[uuid]:
            domains[uuid] = 'saved'
        if 'transient' in marks[uuid]:
            domains[uuid] += '+transient'
        if 'job' in marks[uuid]:
            domains[uuid] += '+job'
    _looks[host] = (time.monotonic(), (domains, files))
    return domains, files


def observe(dep, host, server_id):
    """The guest and files fields of a server, from both hosts."""
    seen = {}
    for where, h in (('here', host), ('other', scenarios.OTHER[host])):
        seen[where] = look(dep, h)
    guest = []
    files = []
    for where in ('here', 'other'):
        domains, leftovers = seen[where]
        if server_id in domains:
            guest.append('%s:%s' % (where, domains[server_id]))
        if leftovers.get(server_id):
            files.append('%s:%s' % (where, ','.join(
                sorted(leftovers[server_id]))))
    return ' '.join(guest) or '-', ' '.join(files) or '-'


def disagreements(row):
    """Where the API's power state disagrees with the domain here."""
    if row['vm_state'] == 'deleted' or row['host'] != 'here':
        return []
    here = [g for g in row['guest'].split() if g.startswith('here:')]
    if not here:
        return ([] if row['power'] in ('nostate', 'shutdown') else
                ['power %s but no domain here' % row['power']])
    state = here[0].split(':', 1)[1].split('+')[0]
    if AGREES.get(state) != row['power']:
        return ['power %s but the domain here is %s' % (row['power'],
                                                         state)]
    return []


def orphans(dep, cloud, server_ids, host):
    """Domains on host of these servers that no server there owns.

    A server owns its domain on its own host, and on the source of a
    resize waiting for its confirm (the old guest, shut off).
    """
    found = []
    domains, _files = look(dep, host)
    for sid in server_ids:
        if sid not in domains:
            continue
        s = cloud.server(sid)
        if s is None:
            found.append('%s: domain of a deleted server' % sid)
        elif (s.get('OS-EXT-SRV-ATTR:host') != host and
              s['OS-EXT-STS:vm_state'] != 'resized'):
            found.append('%s: domain on %s, server on %s' % (
                sid, host, s.get('OS-EXT-SRV-ATTR:host')))
    return found
