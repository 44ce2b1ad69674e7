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

"""nova-recover audit against nova 34's own compute API, in-process.

The payloads are the real ones: servers, instance actions with event
hosts, and the compute service list, read with the microversion the
audit asks for. Only the transport differs from a cloud: the requests go
through the functional harness's API client instead of openstacksdk.
"""

import io
import json
import threading
from urllib import parse

import fixtures
from testtools import content

from nova_recover.cmd import audit
from nova_recover.tests.functional import base


class _Adapter(object):
    """What the audit needs of openstacksdk's compute proxy."""

    def __init__(self, api):
        self.api = api

    def get(self, path, params=None, microversion=None):
        uri = path.lstrip('/')
        if params:
            uri += '?' + parse.urlencode(params)
        before = self.api.microversion
        self.api.microversion = microversion
        try:
            return self.api.api_request(uri)
        finally:
            self.api.microversion = before


class _Connection(object):
    def __init__(self, api):
        self.compute = _Adapter(api)


class AuditTestCase(base.CrashRestartTestCase):

    def audit(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        rc = audit.main(['audit', '-f', 'json'] + list(argv),
                        conn=_Connection(self.admin_api), stdout=out,
                        stderr=err)
        self.addDetail('audit', content.text_content(
            out.getvalue() + err.getvalue()))
        return rc, json.loads(out.getvalue()) if out.getvalue() else None

    def force_down(self, down=True):
        before = self.admin_api.microversion
        self.admin_api.microversion = '2.53'
        try:
            service, = self.admin_api.api_get(
                'os-services?binary=nova-compute').body['services']
            self.admin_api.api_put('os-services/%s' % service['id'],
                                   {'forced_down': down})
        finally:
            self.admin_api.microversion = before

    def test_nothing_stuck(self):
        self.create_server()
        self.assertEqual((0, []), self.audit())

    def test_request_queued_for_a_down_host(self):
        server = self.create_server()
        self.computes[base.HOST].stop()
        self.force_down()
        self.api.post_server_action(server['id'], {'pause': None})
        rc, rows = self.audit()
        self.assertEqual(1, rc)
        row, = rows
        self.assertEqual('queued', row['verdict'])
        self.assertEqual(base.HOST, row['verdict_host'])
        self.assertIn('wait for the request', row['next_startup'])

    def test_in_progress_then_died(self):
        server = self.create_server()
        started = threading.Event()
        release = threading.Event()
        self.addCleanup(release.set)
        real = self.driver.power_off

        def power_off(*args, **kwargs):
            started.set()
            release.wait(60)
            return real(*args, **kwargs)

        self.useFixture(fixtures.MockPatchObject(
            self.driver, 'power_off', power_off))
        self.api.post_server_action(server['id'], {'os-stop': None})
        self.assertTrue(started.wait(20))
        # A live service working on it: not stuck.
        rc, rows = self.audit()
        self.assertEqual(0, rc, rows)
        self.assertEqual('in progress', rows[0]['verdict'])
        self.assertEqual('compute_stop_instance', rows[0]['event'])
        # Its service gone: it died there.
        self.force_down()
        rc, rows = self.audit()
        self.assertEqual(1, rc)
        self.assertEqual('died', rows[0]['verdict'])
        self.force_down(False)
        release.set()
