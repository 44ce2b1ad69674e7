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

"""Read what the audit judges from the compute API, with openstacksdk.

The connection is configured as openstackclient's is: ``--os-cloud`` and
clouds.yaml, ``OS_*`` variables and the ``--os-*`` options, all through
openstack.config, so an operator's existing admin credentials work as
they are.

The audit reads raw JSON through the compute proxy (a keystoneauth
adapter) rather than openstacksdk's resources, so that verdict.py sees
exactly the field names and formats that nova returns, and so that one
microversion is used for every call.
"""

import argparse

from openstack import config as os_config
from openstack import connection
from openstack import exceptions

# 2.62 shows an event's host to admins; 2.84 adds its details, where
# nova-recover says that a start-up closed it. Nova 34 supports both.
MICROVERSION = '2.84'


def cloud_parser(argv):
    """An argparse parent parser with openstackclient's cloud options.

    argv is needed because openstack.config looks at --os-cloud and
    --os-auth-type in it to know which auth options to register.
    """
    parser = argparse.ArgumentParser(add_help=False)
    config = os_config.OpenStackConfig()
    config.register_argparse_arguments(parser, list(argv),
                                       service_keys=['compute'])
    return parser, config


def connect(config, options, app_version=None):
    """A Connection from the options that cloud_parser() parsed.

    Only those options are handed to openstack.config, so the audit's own
    options never end up in the cloud's settings.
    """
    region = config.get_one(argparse=options)
    return connection.Connection(config=region, app_name='nova-recover',
                                 app_version=app_version)


class Reader(object):
    """The compute API calls of one audit, on an openstacksdk Connection."""

    def __init__(self, conn, microversion=MICROVERSION):
        self.compute = conn.compute
        self.microversion = microversion

    def _get(self, path, params=None):
        response = self.compute.get(path, params=params,
                                    microversion=self.microversion)
        exceptions.raise_from_response(response)
        return response.json()

    def servers(self, host=None):
        """Every server of every project (on host), following the pages.

        Nova's list filters take one task_state only, so all servers are
        read and those without a task_state are dropped here.
        """
        params = {'all_tenants': 'True'}
        if host:
            params['host'] = host
        found = []
        while True:
            body = self._get('/servers/detail', dict(params))
            page = body.get('servers', [])
            found.extend(page)
            nexts = [link for link in body.get('servers_links', ())
                     if link.get('rel') == 'next']
            if not page or not nexts:
                return found
            params['marker'] = page[-1]['id']

    def actions(self, server_id):
        """The server's instance actions, newest first, without events."""
        body = self._get('/servers/%s/os-instance-actions' % server_id)
        return body.get('instanceActions', [])

    def action(self, server_id, request_id):
        """One instance action with its events."""
        body = self._get('/servers/%s/os-instance-actions/%s' % (
            server_id, request_id))
        return body['instanceAction']

    def services(self):
        body = self._get('/os-services', {'binary': 'nova-compute'})
        return body.get('services', [])
