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
"""Crash scenarios against the real deployment, ours beside stock.

Every check goes through the public APIs with openstacksdk's sessions
(nova's os-instance-actions, servers and os-services, glance's images);
nothing reads a database. Scenarios are batched as a host crash batches
them: every operation of a group is parked inside its driver call on
both computes at once (compute-a runs nova-compute-recover, compute-b
stock nova-compute), both are SIGKILLed once and restarted once.
"""

import collections
from concurrent import futures
import json
import os
import subprocess
import threading
import time

import openstack

import expectations
import services

API = {
    'compute': 'http://%s:%d/v2.1' % (services.HOST, services.PORTS['nova']),
    'image': 'http://%s:%d' % (services.HOST, services.PORTS['glance']),
    'network': 'http://%s:%d' % (services.HOST, services.PORTS['neutron']),
}
MICROVERSION = '2.96'
OURS, STOCK = 'compute-a', 'compute-b'
OTHER = {OURS: STOCK, STOCK: OURS}
HOSTS = (OURS, STOCK)


class CheckError(Exception):
    pass


def poll(what, fn, timeout, interval=1.0):
    """services.wait_for, failing as a check does."""
    return services.wait_for(what, fn, timeout, interval, error=CheckError)


class Cloud(object):
    """The deployment's APIs, as an operator's client sees them."""

    def __init__(self):
        self.conn = openstack.connection.Connection(
            auth_type='admin_token',
            auth={'endpoint': API['compute'], 'token': 'admin:admin'},
            compute_endpoint_override=API['compute'],
            image_endpoint_override=API['image'],
            network_endpoint_override=API['network'])
        self.nova = self.conn.compute
        self.glance = self.conn.image

    def _ok(self, resp, what):
        if resp.status_code >= 400:
            raise CheckError('%s: HTTP %d %s' % (what, resp.status_code,
                                                 resp.text[:500]))
        return resp

    def get(self, path):
        resp = self.nova.get(path, microversion=MICROVERSION)
        if resp.status_code == 404:
            return None
        return self._ok(resp, 'GET ' + path).json()

    def post(self, path, body):
        return self._ok(self.nova.post(path, json=body,
                                       microversion=MICROVERSION),
                        'POST %s %s' % (path, body))

    def action(self, server_id, body):
        return self.post('/servers/%s/action' % server_id, body)

    def delete(self, server_id):
        return self._ok(self.nova.delete('/servers/%s' % server_id,
                                         microversion=MICROVERSION),
                        'DELETE server')

    def server(self, server_id):
        body = self.get('/servers/%s' % server_id)
        return body and body['server']

    def servers(self, host):
        """``server list --host``."""
        return self.get('/servers/detail?all_tenants=1&host=%s' % host)[
            'servers']

    def actions(self, server_id):
        return self.get('/servers/%s/os-instance-actions'
                        % server_id)['instanceActions']

    def action_detail(self, server_id, request_id):
        return self.get('/servers/%s/os-instance-actions/%s' % (
            server_id, request_id))['instanceAction']

    def services(self, host):
        return self.get('/os-services?binary=nova-compute&host=%s'
                        % host)['services']

    def images(self, **filters):
        query = '&'.join('%s=%s' % kv for kv in filters.items())
        resp = self._ok(self.glance.get('/images?' + query),
                        'image list')
        return resp.json()['images']

    def image(self, image_id):
        resp = self.glance.get('/images/%s' % image_id)
        if resp.status_code == 404:
            return None
        return self._ok(resp, 'image show').json()

    # Set-up.

    def prepare(self, image):
        """Flavors and the guest image (quotas are unlimited in nova.conf).

        image: the bytes of a raw disk.
        """
        flavors = {}
        for name, ram in (('tiny', 64), ('small', 128)):
            resp = self.post('/flavors', {'flavor': {
                'name': name, 'ram': ram, 'vcpus': 1, 'disk': 1}})
            flavors[name] = resp.json()['flavor']['id']
        resp = self._ok(self.glance.post('/images', json={
            'name': 'tiny-guest', 'disk_format': 'raw',
            'container_format': 'bare', 'visibility': 'public'}),
            'image create')
        image_id = resp.json()['id']
        self._ok(self.glance.put(
            '/images/%s/file' % image_id, data=image,
            headers={'Content-Type': 'application/octet-stream'}),
            'image upload')
        poll('image active',
             lambda: self.image(image_id)['status'] == 'active', 60)
        self.flavors = flavors
        self.image_id = image_id

    def boot(self, name, host):
        resp = self.post('/servers', {'server': {
            'name': name, 'imageRef': self.image_id,
            'flavorRef': self.flavors['tiny'], 'networks': 'none',
            'host': host}})
        return resp.json()['server']['id']

    def wait_status(self, server_ids, status, timeout=180):
        """Every server in status with no task_state; ERROR fails."""
        def done():
            pending = []
            for sid in server_ids:
                s = self.server(sid)
                if s is None and status == 'DELETED':
                    continue
                if s is None or s['status'] == 'ERROR':
                    raise CheckError('server %s went to %s' % (
                        sid, s and s.get('fault')))
                if (s['status'] != status or
                        s['OS-EXT-STS:task_state'] is not None):
                    pending.append(sid)
            return not pending
        poll('%d servers %s' % (len(server_ids), status), done, timeout)

    def compute_reported_since(self, host, since):
        """nova-compute has finished init_host: it reports again."""
        svc = self.services(host)
        return svc and svc[0]['updated_at'] and (
            svc[0]['updated_at'] > since)


def guest_image(dep):
    """The guest's disk image, as bytes.

    A few bytes for the fake driver; on libvirt, a 1 MiB raw disk that
    boots, prints a line and halts (tools/libvirt/tiny_image.py).
    """
    if dep.hypervisor != 'libvirt':
        return b'fake guest disk\n'
    path = os.path.join(dep.run, 'tiny-guest.raw')
    subprocess.run([dep.bin('python'), os.path.join(
        services.LIBVIRT_TOOLS, 'tiny_image.py'), path], check=True,
        timeout=60)
    with open(path, 'rb') as f:
        return f.read()


def utcnow():
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())


# Operations: how to bring a server to the operation's start, the request,
# and the driver call it is parked in.

Op = collections.namedtuple(
    'Op', 'name prep request method state action image boot_other cold '
    'moved', defaults=(None, None, None, False, False, False))
# In requests: @NAME@ the server's name, @IMAGE@ the guest image,
# @FLAVOR2@ the resize flavor, @HOST@ the operation's host, @OTHER@ the
# other one. prep is a list of (request, status to wait for). cold: the
# libvirt driver takes this server's snapshot cold (libvirt_ops.py).
# moved: the prep leaves the server on the other host (a resize waiting
# for its confirm there).
STOP = ({'os-stop': None}, 'SHUTOFF')
PAUSE = ({'pause': None}, 'PAUSED')
SUSPEND = ({'suspend': None}, 'SUSPENDED')
RESCUE = ({'rescue': {}}, 'RESCUE')
SHELVE = ({'shelve': None}, 'SHELVED')
OFFLOAD = ({'shelveOffload': None}, 'SHELVED_OFFLOADED')
RESIZE_HERE = ({'resize': {'flavorRef': '@FLAVOR2@'}}, 'VERIFY_RESIZE')

OPS = [
    Op('snapshot', [], {'createImage': {'name': '@NAME@'}}, 'snapshot',
       action='createImage', image='@NAME@'),
    Op('backup', [], {'createBackup': {'name': '@NAME@', 'backup_type':
                                       'daily', 'rotation': 2}},
       'snapshot', action='createBackup', image='@NAME@'),
    Op('reboot-soft', [], {'reboot': {'type': 'SOFT'}}, 'reboot',
       action='reboot'),
    Op('reboot-hard', [], {'reboot': {'type': 'HARD'}}, 'reboot',
       'shutdown', action='reboot'),
    Op('stop', [], {'os-stop': None}, 'power_off'),
    Op('start', [STOP], {'os-start': None}, 'power_on'),
    Op('pause', [], {'pause': None}, 'pause'),
    Op('unpause', [PAUSE], {'unpause': None}, 'unpause'),
    Op('suspend', [], {'suspend': None}, 'suspend'),
    Op('resume', [SUSPEND], {'resume': None}, 'resume'),
    Op('rescue', [], {'rescue': {}}, 'rescue'),
    Op('unrescue', [RESCUE], {'unrescue': None}, 'unrescue'),
    # Parked in spawn, after the rebuild destroyed the old guest.
    Op('rebuild', [], {'rebuild': {'imageRef': '@IMAGE@'}}, 'spawn'),
    # shelve powers off, then uploads its snapshot.
    Op('shelve', [], {'shelve': None}, 'snapshot', image='@NAME@-shelved'),
    # Both keep an eye on the image the shelve made: an offload needs it,
    # an unshelve deletes it once the server runs again.
    Op('shelve-offload', [SHELVE], {'shelveOffload': None}, 'destroy',
       action='shelveOffload', image='@NAME@-shelved'),
    Op('unshelve', [SHELVE, OFFLOAD], {'unshelve': {'host': '@HOST@'}},
       'spawn', image='@NAME@-shelved'),
    # To the other host: parked in the source's migrate_disk_and_power_off.
    Op('resize', [], {'resize': {'flavorRef': '@FLAVOR2@'}},
       'migrate_disk_and_power_off'),
    # Booted on the other host and resized here; the revert is parked in
    # this host's destroy of the new guest.
    Op('resize-revert', [RESIZE_HERE], {'revertResize': None}, 'destroy',
       action='revertResize', boot_other=True),
    Op('live-migration', [], {'os-migrateLive': {
        'host': '@OTHER@', 'block_migration': 'auto'}}, 'live_migration',
       action='live-migration'),
    Op('delete', [], 'DELETE', 'destroy'),
    Op('change-password', [], {'changePassword': {'adminPass': 'Xyzzy1'}},
       'set_admin_password', action='changePassword'),
]
OP_NAMES = [op.name for op in OPS]
# Requests the API answers only when the compute has: RPC calls.
CALLS = {'change-password'}
# Not part of Queued and Lost, because they need the compute while it is
# down: live migration's pre-checks are the conductor's RPC calls to both
# computes, and changePassword is itself an RPC call, whose caller (the
# API) gives up after rpc_response_timeout.
NOT_QUEUEABLE = {'live-migration', 'change-password'}
# A lost unshelve of an offloaded server leaves it with no host: no
# nova-compute's start-up or sweep owns it, stock's or ours.
LOST_UNOWNED = {'unshelve'}
# The audit's verdict while both computes are down, where it is not the
# scenario's own: an offloaded server has no host until nova-compute
# spawns it (no start-up sees it: in progress, then lost), and a delete
# is one that start-up always finishes, however far it got.
AUDIT_DIED = {'unshelve': {'died', 'in progress', 'lost'},
              'delete': {'died', 'queued'}}
AUDIT_QUEUED = {'unshelve': {'queued', 'in progress', 'lost'},
                'delete': {'died', 'queued'}}


def by_name(names):
    names = names.split(',') if isinstance(names, str) else names
    return [op for op in OPS if op.name in names]


class Batch(object):
    """One server per (operation, host), brought to the operation's start."""

    def __init__(self, dep, cloud, log, group, ops):
        self.dep = dep
        self.cloud = cloud
        self.log = log
        self.group = group
        self.ops = ops
        self.servers = {}  # (op name, host) -> server id
        self.images = {}  # (op name, host) -> name of the image it makes

    def name(self, op, host):
        return '%s-%s-%s' % (self.group, op.name, host)

    def render(self, op, host, body):
        text = json.dumps(body)
        for key, value in (('@NAME@', self.name(op, host)),
                           ('@IMAGE@', self.cloud.image_id),
                           ('@FLAVOR2@', self.cloud.flavors['small']),
                           ('@HOST@', host), ('@OTHER@', OTHER[host])):
            text = text.replace(key, value)
        return json.loads(text)

    def boot_start(self):
        with futures.ThreadPoolExecutor(4) as pool:
            jobs = {(op.name, host): pool.submit(
                self.cloud.boot, self.name(op, host),
                OTHER[host] if op.boot_other else host)
                for op in self.ops for host in HOSTS}
            for key, job in jobs.items():
                self.servers[key] = job.result()
        for op in self.ops:
            for host in HOSTS:
                if op.image:
                    self.images[op.name, host] = self.render(op, host,
                                                             op.image)

    def boot_finish(self):
        if not self.ops:
            return
        self.cloud.wait_status(list(self.servers.values()), 'ACTIVE', 300)
        steps = max(len(op.prep) for op in self.ops)
        for i in range(steps):
            waiting = collections.defaultdict(list)
            for op in self.ops:
                if i < len(op.prep):
                    body, status = op.prep[i]
                    for host in HOSTS:
                        waiting[status].append((op, host))
            with futures.ThreadPoolExecutor(4) as pool:
                jobs = [pool.submit(self.cloud.action,
                                    self.servers[op.name, host],
                                    self.render(op, host, op.prep[i][0]))
                        for pairs in waiting.values()
                        for op, host in pairs]
                for job in jobs:
                    job.result()
            for status, pairs in list(waiting.items()):
                waiting[status] = [self.servers[op.name, host]
                                   for op, host in pairs]
            for status, sids in waiting.items():
                self.cloud.wait_status(sids, status, 180)
        for op in self.ops:
            for host in HOSTS:
                s = self.cloud.server(self.servers[op.name, host])
                # Booted on the other host and not moved here by a prep:
                # the operation itself moves it here.
                at = (OTHER[host] if op.moved or
                      (op.boot_other and not op.prep) else host)
                if s.get('OS-EXT-SRV-ATTR:host') not in (at, None):
                    raise CheckError('%s: server on %s, not %s' % (
                        self.name(op, host), s['OS-EXT-SRV-ATTR:host'],
                        at))

    def send(self):
        """Send every operation's request, on both hosts, concurrently.

        Concurrently because some are RPC calls, not casts (changePassword
        waits for the compute), and the compute they wait for is about to
        be parked or down. Casts have returned when this returns; a call's
        answer (or its MessagingTimeout) is not waited for.
        """
        threads = []
        errors = []

        def one(op, host, sid):
            try:
                if op.request == 'DELETE':
                    self.cloud.delete(sid)
                else:
                    self.cloud.action(sid, self.render(op, host,
                                                       op.request))
            except Exception as e:
                if op.name not in CALLS:
                    errors.append('%s on %s: %s' % (op.name, host, e))

        for op in self.ops:
            for host in HOSTS:
                t = threading.Thread(
                    target=one, args=(op, host, self.servers[op.name, host]),
                    daemon=True)
                t.start()
                threads.append((op, t))
        deadline = time.monotonic() + 60
        for op, t in threads:
            if op.name not in CALLS:
                t.join(max(0.1, deadline - time.monotonic()))
        if errors:
            raise CheckError('requests refused: %s' % '; '.join(errors))

    def crash_rules(self, host, action='park'):
        return [{'method': op.method, 'uuid': self.servers[op.name, host],
                 'state': op.state, 'action': action, 'cold': op.cold}
                for op in self.ops]


def arm(dep, host, rules):
    path = dep.crash_file(host)
    with open(path + '.tmp', 'w') as f:
        json.dump(rules, f)
    os.replace(path + '.tmp', path)


def disarm(dep, host):
    for path in (dep.crash_file(host), dep.parked_file(host)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def parked(dep, host):
    try:
        with open(dep.parked_file(host)) as f:
            return set(tuple(line.split()) for line in f if line.strip())
    except FileNotFoundError:
        return set()


def restart_and_settle(dep, cloud, log, hosts, extra_conf=None):
    """Start the computes again and wait for their start-up to finish.

    extra_conf: {host: [config file]} for this start only.
    """
    since = utcnow()
    time.sleep(1)
    for host in hosts:
        dep.start_compute(host, (extra_conf or {}).get(host, ()))
    for host in hosts:
        poll('%s reports after restart' % host,
             lambda: (dep.check_alive(host) or
                      cloud.compute_reported_since(host, since)), 180)


# Observing one server after the restart.

POWER = {0: 'nostate', 1: 'running', 3: 'paused', 4: 'shutdown',
         6: 'crashed', 7: 'suspended'}
# What evidence.py writes in an Error event's details.
DETAILS = (('Interrupted by a nova-compute restart', 'interrupted'),
           ('nova-compute restarted before', 'interrupted'),
           ('never reached nova-compute', 'lost'))


def request_events(cloud, server_id, action_name):
    """The request's compute events and the re-runs recorded after it.

    The request is the newest action_name action that a user made; a
    start-up re-run records an action of its own, with no user. Returns
    (events, reruns): events as expectations.py spells them
    ('<method>=<result>[:<details>]', sorted, comma separated; None when
    the request has no action), reruns the number of actions with no user
    newer than the request's.
    """
    actions = cloud.actions(server_id)  # newest first
    mine = [i for i, a in enumerate(actions) if a['action'] == action_name]
    requested = [i for i in mine if actions[i].get('user_id')]
    index = (requested or mine or [None])[0]
    if index is None:
        return None, 0
    reruns = sum(1 for a in actions[:index] if not a.get('user_id'))
    detail = cloud.action_detail(server_id, actions[index]['request_id'])
    events = []
    for e in detail.get('events') or []:
        if not e['event'].startswith('compute_'):
            continue
        text = '%s=%s' % (e['event'][len('compute_'):],
                          e['result'] or 'open')
        if e['result'] == 'Error':
            text += ':' + next((tag for words, tag in DETAILS
                                if words in (e.get('details') or '')),
                               'other')
        events.append(text)
    return ','.join(sorted(events)), reruns


def guests(dep, host):
    """The fake hypervisor's guests on host, from its persistent store.

    {uuid: {'name': ..., 'state': ...}}, as fake_driver.py writes them.
    """
    try:
        with open(os.path.join(dep.run, host, 'fake-guests.json')) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def observe(cloud, batch, op, host):
    """The end of one server, field by field (see expectations.py)."""
    sid = batch.servers[op.name, host]
    s = cloud.server(sid)
    row = {}
    if s is None:
        row.update(vm_state='deleted', task='-', host='-', flavor='-',
                   power='-', fault='-')
        row['server'] = 'deleted'
    else:
        where = s.get('OS-EXT-SRV-ATTR:host')
        row.update(
            vm_state=s['OS-EXT-STS:vm_state'],
            task=s['OS-EXT-STS:task_state'] or '-',
            host=('here' if where == host else
                  'other' if where == OTHER[host] else where or '-'),
            flavor=(s.get('flavor') or {}).get('original_name', '?'),
            power=POWER.get(s.get('OS-EXT-STS:power_state'),
                            str(s.get('OS-EXT-STS:power_state'))),
            fault=(s.get('fault') or {}).get('message') or '-')
        row['server'] = '%s/%s' % (s['status'], row['task'])
    if batch.dep.hypervisor == 'libvirt':
        import libvirt_ops
        row['guest'], row['files'] = libvirt_ops.observe(batch.dep, host,
                                                         sid)
    else:
        held = {'here': guests(batch.dep, host).get(sid),
                'other': guests(batch.dep, OTHER[host]).get(sid)}
        row['guest'] = ' '.join('%s:%s' % (where, held[where]['state'])
                                for where in ('here', 'other')
                                if held[where]) or '-'
    try:
        events, row['reruns'] = request_events(cloud, sid,
                                               op.action or op.name)
    except CheckError:
        events, row['reruns'] = None, 0
    row['events'] = 'n/a' if events is None else events
    if (op.name, host) in batch.images:
        images = cloud.images(name=batch.images[op.name, host])
        row['images'] = ','.join(sorted(i['status'] for i in images)) or '-'
    row['stable'] = row['task'] == '-'
    return row


ROW = '%-15s %-8s %-22s %-5s %-6s %-9s %-30s %-8s %s'


def line(who, r):
    """One row's fields as a table line (expected or actual)."""
    files = r.get('files')
    r = dict((k, expectations.show(v)) for k, v in r.items())
    return ROW % ('', who, '%s/%s' % (r['vm_state'], r['task']), r['host'],
                  r['flavor'], r['power'], r['guest'] + (
                      ' files=%s' % r['files'] if files is not None else ''),
                  r.get('images', ''),
                  'events=%s reruns=%s fault=%s' % (
                      r['events'], r['reruns'], r['fault']))


def print_table(log, title, rows, table):
    """rows: {op: {host: row}}; expected, ours and stock per operation.

    Each difference is named under its line. Stock's are observations;
    ours' are failures.
    """
    log('')
    log('== %s ==' % title)
    head = ROW % ('operation', '', 'vm_state/task', 'host', 'flavor',
                  'power', 'guest', 'images', 'events, reruns, fault')
    log(head)
    log('-' * len(head))
    for op_name, by_host in rows.items():
        want = table[op_name]
        shown = want._asdict()
        if want.images is None:
            shown.pop('images')
        log(op_name + line('expected', shown)[len(op_name):])
        for host, who in ((OURS, 'ours'), (STOCK, 'stock')):
            r = by_host.get(host)
            if r is None:
                continue
            diff = expectations.differences(want, r)
            if 'early' in r:
                who += '*'
            log(line(who, r) + ('   PASS' if not diff else '   DIFF'))
            for name, exp, got in diff:
                log('%-15s %-8s   %s: expected %s, got %s' % (
                    '', '', name, exp, got))
        early = by_host.get(OURS, {}).get('early')
        if early:
            log('%-15s %-8s   (*before the grace: %s)' % ('', '', early))


# Scenarios.

def judge(table, op, row, failures):
    """Fail on any field of ours that differs from the table's entry.

    On libvirt, also where the API's power state disagrees with the
    domain.
    """
    for name, exp, got in expectations.differences(table[op.name], row):
        failures.append('%s: %s expected %s, got %s' % (op.name, name, exp,
                                                        got))
    if 'files' in row:
        import libvirt_ops
        failures.extend('%s: %s' % (op.name, d)
                        for d in libvirt_ops.disagreements(row))


def await_ends(cloud, batch, table, timeout):
    """Wait, at most timeout seconds, until ours' ends are the table's.

    Never fails by itself: the judge then reports what differs.
    """
    try:
        poll('%s ends on %s' % (batch.group, OURS), lambda: not any(
            expectations.differences(table[op.name],
                                     observe(cloud, batch, op, OURS))
            for op in batch.ops), timeout, interval=5)
    except CheckError:
        pass


def observe_all(cloud, batch, hosts=HOSTS):
    """{op: {host: row}}, a few requests at a time."""
    with futures.ThreadPoolExecutor(4) as pool:
        jobs = collections.OrderedDict(
            ((op.name, h), pool.submit(observe, cloud, batch, op, h))
            for op in batch.ops for h in hosts)
        rows = collections.OrderedDict()
        for (name, h), job in jobs.items():
            rows.setdefault(name, {})[h] = job.result()
    return rows


def write_clouds_yaml(dep):
    """The operator's clouds.yaml for the deployment (cloud "deployment")."""
    path = os.path.join(dep.run, 'clouds.yaml')
    with open(path, 'w') as f:
        json.dump({'clouds': {'deployment': {
            'auth_type': 'admin_token',
            'auth': {'endpoint': API['compute'], 'token': 'admin:admin'},
            'compute_endpoint_override': API['compute'],
        }}}, f, indent=2)
    return path


def conductor_busy(cloud, server_id):
    """Whether the newest request has a conductor event still open."""
    actions = cloud.actions(server_id) or []
    if not actions:
        return False
    detail = cloud.action_detail(server_id, actions[0]['request_id'])
    return any(e['event'].startswith('conductor_') and e['result'] is None
               for e in detail.get('events') or [])


def force_down(cloud, hosts, down):
    """openstack compute service set --down/--up, as an operator would."""
    for host in hosts:
        for service in cloud.services(host):
            cloud._ok(cloud.nova.put(
                '/os-services/%s' % service['id'],
                json={'forced_down': down}, microversion=MICROVERSION),
                'service set forced_down=%s %s' % (down, host))


def audit_check(dep, cloud, log, expected):
    """nova-recover audit while the computes are down, checked.

    expected maps server id -> (scenario, operation, verdict). The
    computes are forced down first (what an operator does after a host
    crash); otherwise the API shows them up until service_down_time has
    passed, and the audit rightly calls the operations in progress.
    Returns the failures.
    """
    # A queued resize or unshelve is still being scheduled by the
    # conductor for a while; a forced-down host would fail it there.
    failures = []
    try:
        poll('the conductor done with every request', lambda: not any(
            conductor_busy(cloud, sid) for sid in expected), 120, interval=2)
    except CheckError as e:
        failures.append('audit: %s' % e)
    force_down(cloud, HOSTS, True)
    try:
        env = {'OS_CLIENT_CONFIG_FILE': write_clouds_yaml(dep)}
        argv = [dep.bin('nova-recover'), 'audit', '--os-cloud',
                'deployment']
        table = subprocess.run(argv + ['--long'], capture_output=True,
                               text=True, env=dep.env(env), timeout=300)
        found = subprocess.run(argv + ['-f', 'json'], capture_output=True,
                               text=True, env=dep.env(env), timeout=300)
    finally:
        force_down(cloud, HOSTS, False)
    log('audit (both computes down), exit %d:\n%s%s' % (
        table.returncode, table.stdout, table.stderr))
    if found.returncode != 1:
        failures.append('audit -f json exit %d, not 1: %s' % (
            found.returncode, found.stderr[-2000:]))
        return failures
    verdicts = {row['server']: row for row in json.loads(found.stdout)}
    for sid, (scenario, op, want) in sorted(expected.items()):
        row = verdicts.get(sid)
        got = row and row['verdict']
        if got not in want:
            failures.append('audit: %s %s: verdict %s, expected %s (%s)' % (
                scenario, op, got, '/'.join(sorted(want)),
                row and row['reason']))
    return failures


def crash_cycle(dep, cloud, log, died_ops, queued_ops=(),
                kill_in_recovery=None, lost_ops=()):
    """Died (and Queued) with one SIGKILL and one restart of each compute.

    Every died_ops operation is parked in its driver call on both computes
    and both are SIGKILLed together; then every queued_ops request is sent
    while they are down (RabbitMQ keeps the casts). compute-a is started
    first, and compute-b's parked servers must be untouched by its
    start-up (Other host); then compute-b. With kill_in_recovery (driver
    methods), the first start-up is itself SIGKILLed at the first of those
    calls and both computes are started once more (Died during recovery).
    With lost_ops, their requests are sent while the computes are down and
    RabbitMQ is restarted before they come back (Lost): those servers must
    keep their state until the restarted compute has consumed its queue
    for [recover]queued_request_grace, and be settled by the sweep after
    it.
    Returns {scenario: failures}.
    """
    died_group = 'recovery' if kill_in_recovery else 'died'
    died = Batch(dep, cloud, log, died_group, list(died_ops))
    queued = Batch(dep, cloud, log, 'queued', [
        op for op in queued_ops if op.name not in NOT_QUEUEABLE])
    lost = Batch(dep, cloud, log, 'lost', [
        op for op in lost_ops
        if op.name not in NOT_QUEUEABLE and op.name not in LOST_UNOWNED])
    batches = [b for b in (died, queued, lost) if b.ops]
    for b in batches:
        b.boot_start()
    for b in batches:
        b.boot_finish()
    log('%s: %d servers at their operations\' start' % (
        '+'.join(b.group for b in batches),
        sum(len(b.servers) for b in batches)))
    for host in HOSTS:
        disarm(dep, host)
        arm(dep, host, died.crash_rules(host))
    died.send()
    want = {host: {(op.method, died.servers[op.name, host])
                   for op in died.ops} for host in HOSTS}
    poll('every operation parked in its driver call',
         lambda: all(want[h] <= parked(dep, h) for h in HOSTS), 180)
    log('%s: %d operations parked in their driver calls; SIGKILL both '
        'computes' % (died_group, sum(len(w) for w in want.values())))
    for host in HOSTS:
        dep.kill(host)
        disarm(dep, host)
    if queued.ops:
        queued.send()
        log('queued: %d requests sent while both computes are down'
            % len(queued.servers))
    audit_failures = None
    if not kill_in_recovery and not lost.ops:
        expected = {}
        for (name, host), sid in died.servers.items():
            expected[sid] = ('died', name, AUDIT_DIED.get(name, {'died'}))
        for (name, host), sid in queued.servers.items():
            expected[sid] = ('queued', name,
                             AUDIT_QUEUED.get(name, {'queued'}))
        audit_failures = audit_check(dep, cloud, log, expected)
    if lost.ops:
        lost.send()
        lost_sent = time.monotonic()
        # What is lost must be the casts to the computes, not the
        # conductor's own work: a resize still being scheduled when the
        # broker goes loses the conductor's call to the scheduler, and
        # the conductor then ends the request itself (seen once in CI).
        try:
            poll('the conductor done with every lost request',
                 lambda: not any(conductor_busy(cloud, sid)
                                 for sid in lost.servers.values()),
                 120, interval=2)
        except CheckError as e:
            log('lost: %s' % e)
        dep.restart_rabbitmq()
        log('lost: %d requests sent while both computes are down, then '
            'RabbitMQ restarted (the casts are gone)' % len(lost.servers))
    if kill_in_recovery:
        for host in HOSTS:
            arm(dep, host, [{'method': m, 'uuid': None, 'state': None,
                             'action': 'kill'} for m in kill_in_recovery])
            dep.start_compute(host)
        try:
            poll('start-up recovery killed at %s' % kill_in_recovery,
                 lambda: not any(dep.alive(h) for h in HOSTS), 120)
        except CheckError:
            pass
        died_in = {h: sorted(parked(dep, h)) for h in HOSTS}
        for host in HOSTS:
            dep.kill(host)
            disarm(dep, host)
        log('recovery: start-up SIGKILLed inside %s' % '; '.join(
            '%s: %s' % (h, ' '.join(m for m, _u in c) or 'no driver call')
            for h, c in died_in.items()))
    # Other host: every field of compute-b's parked servers, compute-a's
    # guests included, is the same after compute-a's start-up as before.
    before = observe_all(cloud, died, [STOCK])
    restart_and_settle(dep, cloud, log, [OURS])
    if lost.ops:
        early_age = time.monotonic() - lost_sent
        early = observe_all(cloud, lost, [OURS])
    after = observe_all(cloud, died, [STOCK])
    touched = ['%s %s: %s -> %s' % (name, field, before[name][STOCK][field],
                                    after[name][STOCK][field])
               for name in before for field in expectations.FIELDS
               if field in before[name][STOCK] and
               before[name][STOCK][field] != after[name][STOCK].get(field)]
    log('other host: compute-a\'s start-up left compute-b\'s %d parked '
        'servers %s' % (len(before), 'untouched' if not touched else
                        'CHANGED: %s' % '; '.join(touched)))
    restart_and_settle(dep, cloud, log, [STOCK])
    log('%s: both computes restarted' % died_group)
    results = collections.OrderedDict()
    # Some ends take a cast more (a re-run hands a revert to the source,
    # queued requests run one after another): wait, bounded, until ours
    # match, so that a slow end is not mistaken for a wrong one.
    tables = expectations.tables(dep.hypervisor)
    died_table = tables[died_group]
    if queued.ops:
        await_ends(cloud, queued, tables['queued'], 120)
    await_ends(cloud, died, died_table, 30)
    # What ours' start-up saved, stock has had the same time to do.
    time.sleep(3)
    failures = []
    rows = observe_all(cloud, died)
    for op in died.ops:
        judge(died_table, op, rows[op.name][OURS], failures)
    if dep.hypervisor == 'libvirt':
        import libvirt_ops
        failures.extend(libvirt_ops.orphans(
            dep, cloud, [died.servers[op.name, OURS] for op in died.ops],
            OURS))
    print_table(log, 'Died during recovery: SIGKILL inside the driver call, '
                'SIGKILL again inside start-up recovery, restart'
                if kill_in_recovery else
                'Died: SIGKILL inside the driver call, one restart', rows,
                died_table)
    results[died_group] = failures
    results['other-host'] = (['compute-a start-up changed compute-b '
                              'servers: %s' % '; '.join(touched)]
                             if touched else [])
    if queued.ops:
        failures = []
        rows = observe_all(cloud, queued)
        for op in queued.ops:
            judge(tables['queued'], op, rows[op.name][OURS], failures)
        print_table(log, 'Queued: requests sent while nova-compute is '
                    'down, one restart', rows, tables['queued'])
        results['queued'] = failures
    if audit_failures is not None:
        results['audit'] = audit_failures
    if lost.ops:
        results['lost'] = settle_lost(dep, cloud, log, lost, lost_sent,
                                      early, early_age)
    return results


def settle_lost(dep, cloud, log, batch, sent, early, early_age):
    """Lost requests: untouched until the grace period, swept after it."""
    failures = []
    grace = dep.queued_request_grace
    if early_age < grace:
        for name, by_host in early.items():
            if by_host[OURS]['stable'] and name != 'delete':
                failures.append('%s: settled before the grace period (%s)'
                                % (name, by_host[OURS]['server']))
    else:
        log('lost: compute-a came back %ds after the requests, after the '
            '%ds grace period; "before" is not checked' % (early_age, grace))
    # The grace counts from when compute-a's RPC server started, which
    # was before early_age (its restart had settled), not from sending.
    wait = (early_age + grace + 2 * dep.sweep_interval + 20 -
            (time.monotonic() - sent))
    log('lost: waiting up to %ds for the grace period and the sweep'
        % max(wait, 0))
    try:
        poll('sweep settles lost requests on %s' % OURS, lambda: (
            time.monotonic() - sent > grace and
            all(observe(cloud, batch, op, OURS)['stable']
                for op in batch.ops)), max(wait, 5), interval=5)
    except CheckError as e:
        failures.append(str(e))
    table = expectations.tables(dep.hypervisor)['lost']
    await_ends(cloud, batch, table, 15)
    rows = observe_all(cloud, batch)
    for op in batch.ops:
        judge(table, op, rows[op.name][OURS], failures)
        rows[op.name][OURS]['early'] = early[op.name][OURS]['server']
    print_table(log, 'Lost: requests sent while nova-compute is down, '
                'RabbitMQ restarted, restart', rows, table)
    return failures


# Outage: requests queued through an outage longer than the grace, and a
# start-up slow to reach its RPC server.
OUTAGE_GRACE = 60
OUTAGE_DOWN = OUTAGE_GRACE + 15
# Longer than the grace too: a grace counted from the process's start or
# from start-up's look at the instance, not from the RPC server's start,
# would take every request as lost.
OUTAGE_STALL = OUTAGE_GRACE + 15


def outage_cycle(dep, cloud, log, grace=OUTAGE_GRACE, down=OUTAGE_DOWN,
                 stall=OUTAGE_STALL):
    """Queued requests survive a long outage and a slow start-up.

    Both computes are SIGKILLed while idle, one request per operation and
    host is sent, and they stay down for ``down`` seconds, longer than
    compute-a's ``[recover]queued_request_grace`` (``grace``, for this
    start only). Then both start with the fake driver's start_delay
    (``stall``), which holds back the RPC server after init_host has
    looked at every instance. The grace counts from the RPC server's
    start, so every request is still queued, not lost, and is honoured:
    the exact end of a queued request, a Success event, no re-run, no
    lost event. compute-a's log must show every one of its servers held
    back for its queued request by start-up and none taken as lost.
    Returns {'outage': failures}.
    """
    ops = by_name(list(expectations.OUTAGE))
    batch = Batch(dep, cloud, log, 'outage', ops)
    batch.boot_start()
    batch.boot_finish()
    for host in HOSTS:
        disarm(dep, host)
        dep.kill(host)
    batch.send()
    sent = time.monotonic()
    log('outage: %d servers, both computes SIGKILLed, %d requests sent; '
        'down for %ds (compute-a grace %ds)' % (
            len(batch.servers), len(batch.servers), down, grace))
    time.sleep(max(0, down - (time.monotonic() - sent)))
    log_path = os.path.join(dep.logs, OURS + '.log')
    offset = os.path.getsize(log_path)
    extra = {host: [dep.compute_override(host, 'outage', dict(
        [('persistent_fake', {'start_delay': str(stall)})] +
        ([('recover', {'queued_request_grace': str(grace)})]
         if host == OURS else [])))] for host in HOSTS}
    started = time.monotonic()
    restart_and_settle(dep, cloud, log, HOSTS, extra)
    serving = time.monotonic() - started
    log('outage: both computes serve %ds after their start (stall %ds), '
        '%ds after the requests' % (serving, stall,
                                    time.monotonic() - sent))
    await_ends(cloud, batch, expectations.OUTAGE, 120)
    time.sleep(3)
    failures = []
    rows = observe_all(cloud, batch)
    for op in ops:
        judge(expectations.OUTAGE, op, rows[op.name][OURS], failures)
    with open(log_path, errors='replace') as f:
        f.seek(offset)
        text = f.read()
    if 'Slow start-up: done waiting' not in text:
        failures.append('compute-a did not log its slow start-up')
    for op in ops:
        sid = batch.servers[op.name, OURS]
        mine = [ln for ln in text.splitlines() if sid in ln]
        if not any('may still be queued for this host' in ln for ln in mine):
            failures.append('%s: start-up did not hold it back for its '
                            'queued request' % op.name)
        for ln in mine:
            if ('never reached this host' in ln or
                    'interrupted by a nova-compute restart' in ln):
                failures.append('%s: %s' % (op.name, ln.strip()[-200:]))
    print_table(log, 'Outage: requests queued through an outage longer '
                'than the grace, slow start-up', rows, expectations.OUTAGE)
    return {'outage': failures}
