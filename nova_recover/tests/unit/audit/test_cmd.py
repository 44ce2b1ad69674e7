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

"""``nova-recover audit`` end to end, on a fake compute endpoint.

The fake answers the compute proxy's ``get()`` with real
``requests.Response`` objects, so the client's error handling runs as it
does against nova.
"""

import io
import json
from unittest import mock

import fixtures
from oslo_utils.fixture import uuidsentinel as uuids
from oslotest import base
import requests

from nova_recover.audit import client
from nova_recover.audit import verdict
from nova_recover.cmd import audit as cmd
from nova_recover.tests.unit import audit as fake

OUTCOMES = {'powering-off': ('powering', 'STOPPED (stop retried or '
                                         'recorded)')}


def _response(status, body):
    response = requests.Response()
    response.status_code = status
    response.headers['Content-Type'] = 'application/json'
    response._content = json.dumps(body).encode()
    response.reason = {200: 'OK', 403: 'Forbidden',
                       404: 'Not Found'}.get(status, '')
    return response


class FakeCompute(object):
    """The compute proxy: path -> body, or (status, body)."""

    def __init__(self, routes):
        self.routes = routes
        self.calls = []

    def get(self, path, params=None, microversion=None):
        self.calls.append((path, params, microversion))
        answer = self.routes.get(path)
        if callable(answer):
            answer = answer(params)
        if answer is None:
            return _response(404, {'itemNotFound': {
                'code': 404, 'message': '%s not found' % path}})
        if isinstance(answer, tuple):
            return _response(*answer)
        return _response(200, answer)


class FakeConnection(object):

    def __init__(self, routes):
        self.compute = FakeCompute(routes)


def _routes(servers, actions=None, services=None):
    """Routes for servers; actions maps server id -> shown actions."""
    routes = {
        '/servers/detail': {'servers': servers},
        '/os-services': {'services': services if services is not None
                         else [fake.service()]},
    }
    for server_id, shown in (actions or {}).items():
        listed = []
        for action in shown:
            entry = dict(action)
            entry.pop('events', None)
            listed.append(entry)
            routes['/servers/%s/os-instance-actions/%s' % (
                server_id, action['request_id'])] = {'instanceAction': action}
        routes['/servers/%s/os-instance-actions' % server_id] = {
            'instanceActions': listed}
    return routes


class AuditCommandTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        for name in ('OS_CLOUD', 'OS_AUTH_TYPE', 'OS_AUTH_URL'):
            self.useFixture(fixtures.EnvironmentVariable(name))
        self.useFixture(fixtures.MockPatchObject(
            verdict, 'load_outcomes', return_value=OUTCOMES))

    def _run(self, argv, routes):
        self.conn = FakeConnection(routes)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        return cmd.main(['audit'] + argv, conn=self.conn, now=fake.NOW,
                        stdout=self.stdout, stderr=self.stderr)

    def _died(self):
        """A stop that started on cmp1, whose service is down."""
        server = fake.server('powering-off', updated=900,
                             uuid=uuids.stopping, name='web1')
        shown = [fake.action('stop', start=900, uuid=uuids.stopping,
                             events=[fake.event('stop_instance', start=890)])]
        return server, shown

    def test_json_and_exit_1_when_something_is_stuck(self):
        server, shown = self._died()
        routes = _routes([server, fake.server(None, uuid=uuids.healthy)],
                         {uuids.stopping: shown},
                         [fake.service(state='down', updated=800)])
        self.assertEqual(1, self._run(['-f', 'json'], routes))
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual(1, len(rows))
        row = rows[0]
        self.assertEqual(uuids.stopping, row['server'])
        self.assertEqual('web1', row['name'])
        self.assertEqual(fake.PROJECT, row['project'])
        self.assertEqual('cmp1', row['host'])
        self.assertEqual('powering-off', row['task_state'])
        self.assertEqual('active', row['vm_state'])
        self.assertEqual('Running', row['power_state'])
        self.assertEqual(900, row['age_seconds'])
        self.assertEqual('died', row['verdict'])
        self.assertEqual('cmp1', row['verdict_host'])
        self.assertTrue(row['stuck'])
        self.assertEqual('powering rule: STOPPED (stop retried or recorded)',
                         row['next_startup'])
        self.assertEqual(shown[0]['request_id'], row['request_id'])
        self.assertEqual('compute_stop_instance', row['event'])
        self.assertEqual('', self.stderr.getvalue())

    def test_every_call_uses_a_microversion_that_shows_event_hosts(self):
        server, shown = self._died()
        self._run([], _routes([server], {uuids.stopping: shown}))
        paths = [path for path, _params, _mv in self.conn.compute.calls]
        self.assertEqual(
            ['/os-services', '/servers/detail',
             '/servers/%s/os-instance-actions' % uuids.stopping,
             '/servers/%s/os-instance-actions/%s' % (
                 uuids.stopping, shown[0]['request_id'])], paths)
        for _path, _params, microversion in self.conn.compute.calls:
            self.assertEqual(client.MICROVERSION, microversion)
        major, minor = client.MICROVERSION.split('.')
        self.assertGreaterEqual((int(major), int(minor)), (2, 62))
        self.assertEqual({'all_tenants': 'True'},
                         self.conn.compute.calls[1][1])
        self.assertEqual({'binary': 'nova-compute'},
                         self.conn.compute.calls[0][1])

    def test_table(self):
        server, shown = self._died()
        routes = _routes([server], {uuids.stopping: shown},
                         [fake.service(state='down')])
        self.assertEqual(1, self._run([], routes))
        out = self.stdout.getvalue()
        for column in cmd.COLUMNS:
            self.assertIn(column, out)
        self.assertNotIn('Reason', out)
        self.assertIn('died on cmp1', out)
        self.assertIn('15m00s', out)
        self.assertIn('powering rule: STOPPED', out)

    def test_long_table_has_the_reason(self):
        server, shown = self._died()
        routes = _routes([server], {uuids.stopping: shown},
                         [fake.service(state='down')])
        self._run(['--long'], routes)
        self.assertIn('Reason', self.stdout.getvalue())
        self.assertIn('nova-compute on cmp1 is down', self.stdout.getvalue())

    def test_exit_0_when_only_in_progress(self):
        server = fake.server('powering-off', updated=90,
                             uuid=uuids.stopping)
        shown = [fake.action('stop', start=90, uuid=uuids.stopping,
                             events=[fake.event('stop_instance', start=80)])]
        self.assertEqual(0, self._run(
            ['-f', 'json'], _routes([server], {uuids.stopping: shown})))
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual('in progress', rows[0]['verdict'])
        self.assertFalse(rows[0]['stuck'])

    def test_exit_0_when_no_server_has_a_task_state(self):
        self.assertEqual(0, self._run([], _routes([fake.server(None)])))
        self.assertIn('No server', self.stdout.getvalue())
        self.assertEqual(0, self._run(['-f', 'json'],
                                      _routes([fake.server(None)])))
        self.assertEqual([], json.loads(self.stdout.getvalue()))

    def test_host_is_a_server_side_filter(self):
        self._run(['--host', 'cmp9'], _routes([]))
        self.assertEqual({'all_tenants': 'True', 'host': 'cmp9'},
                         self.conn.compute.calls[1][1])

    def test_older_than_skips_young_servers_unread(self):
        server, shown = self._died()
        routes = _routes([server], {uuids.stopping: shown},
                         [fake.service(state='down')])
        self.assertEqual(0, self._run(['--older-than', '1000', '-f', 'json'],
                                      routes))
        self.assertEqual([], json.loads(self.stdout.getvalue()))
        self.assertEqual(2, len(self.conn.compute.calls))

    def test_grace(self):
        server = fake.server('pausing', updated=300)
        shown = [fake.action('pause', start=300, events=[])]
        routes = _routes([server], {uuids.server: shown})
        self.assertEqual(0, self._run([], routes))
        self.assertEqual(1, self._run(['--grace', '100'], routes))
        self.assertIn('lost', self.stdout.getvalue())

    def test_follows_the_pages(self):
        first = fake.server(None, uuid=uuids.first)
        second, shown = self._died()

        def pages(params):
            if params.get('marker') == uuids.first:
                return {'servers': [second]}
            return {'servers': [first], 'servers_links': [
                {'rel': 'next', 'href': 'http://nova/v2.1/servers/detail?'
                 'marker=%s' % uuids.first}]}

        routes = _routes([], {uuids.stopping: shown},
                         [fake.service(state='down')])
        routes['/servers/detail'] = pages
        self.assertEqual(1, self._run(['-f', 'json'], routes))
        self.assertEqual([uuids.stopping], [
            row['server'] for row in json.loads(self.stdout.getvalue())])

    def test_server_deleted_meanwhile_is_skipped(self):
        server, _shown = self._died()
        self.assertEqual(0, self._run(['-f', 'json'], _routes([server])))
        self.assertEqual([], json.loads(self.stdout.getvalue()))

    def test_api_error_exits_2(self):
        routes = _routes([])
        routes['/os-services'] = (403, {'forbidden': {
            'code': 403, 'message': 'Policy does not allow '
                                    'os_compute_api:os-services:list'}})
        self.assertEqual(2, self._run([], routes))
        self.assertIn('os_compute_api:os-services:list',
                      self.stderr.getvalue())
        self.assertEqual('', self.stdout.getvalue())

    def test_events_without_host_exit_2(self):
        server, shown = self._died()
        del shown[0]['events'][0]['host']
        self.assertEqual(2, self._run([], _routes(
            [server], {uuids.stopping: shown})))
        self.assertIn('2.62', self.stderr.getvalue())

    def test_connection_error_exits_2(self):
        with mock.patch.object(client, 'connect',
                               side_effect=Exception('no auth_url')):
            self.assertEqual(2, cmd.main(['audit'], stdout=io.StringIO(),
                                         stderr=io.StringIO()))

    def test_usage_errors_exit_2(self):
        stderr = self.useFixture(fixtures.StringStream('stderr')).stream
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr))
        for argv in ([], ['audit', '-f', 'yaml'],
                     ['audit', '--older-than', 'soon'], ['nosuch']):
            error = self.assertRaises(SystemExit, cmd.main, argv,
                                      conn=FakeConnection({}))
            self.assertEqual(2, error.code, argv)

    def test_cloud_options_reach_openstack_config(self):
        clouds = self.useFixture(fixtures.TempDir()).join('clouds.yaml')
        with open(clouds, 'w') as f:
            f.write('clouds:\n  admin:\n    auth:\n'
                    '      auth_url: http://keystone.example/v3\n'
                    '      username: admin\n      password: secret\n'
                    '      project_name: admin\n')
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_CLIENT_CONFIG_FILE', clouds))
        with mock.patch.object(client, 'connect') as connect:
            connect.return_value = FakeConnection(_routes([]))
            cmd.main(['audit', '--os-cloud', 'admin', '--host', 'cmp1'],
                     stdout=io.StringIO(), stderr=io.StringIO())
        options = connect.call_args[0][1]
        self.assertEqual('admin', options.os_cloud)
        self.assertFalse(hasattr(options, 'host'))


class FormatAgeTestCase(base.BaseTestCase):

    def test_format_age(self):
        self.assertEqual('0s', cmd.format_age(-3))
        self.assertEqual('45s', cmd.format_age(45))
        self.assertEqual('12m05s', cmd.format_age(725))
        self.assertEqual('3h02m', cmd.format_age(3 * 3600 + 150))
        self.assertEqual('2d04h', cmd.format_age(2 * 86400 + 4 * 3600 + 9))
