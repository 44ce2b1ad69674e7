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

"""Serve one OpenStack WSGI application under gunicorn, 127.0.0.1 only.

    wsgi_server.py NAME PORT MODULE:ATTR

A launcher instead of the gunicorn command line because the services'
WSGI entry points parse sys.argv as their own options (neutron's does
config.init(sys.argv[1:])), and gunicorn's arguments would be
rejected there. The application is loaded in the worker, after the
fork, so the master holds no database or RPC connection.
"""

import importlib
import sys

from gunicorn.app import base


class Application(base.BaseApplication):

    def __init__(self, name, port, target):
        self.name = name
        self.port = port
        self.target = target
        super().__init__()

    def load_config(self):
        settings = {
            'bind': '127.0.0.1:%d' % self.port,
            'workers': 1,
            'worker_class': 'gthread',
            'threads': 4,
            'timeout': 300,
            'graceful_timeout': 5,
            # No keep-alive: gthread closes an idle kept-alive connection
            # after two seconds, and a client that reuses it at that
            # moment gets a reset (seen as placement's ConnectFailure and
            # a NoValidHost under load).
            'keepalive': 0,
            # nova-api asks neutron for the ports of every listed server
            # in one GET, whose query outgrows gunicorn's default 4094
            # bytes at some 80 servers.
            'limit_request_line': 0,
            'proc_name': self.name,
            'accesslog': '-',
            'errorlog': '-',
            'control_socket_disable': True,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):
        sys.argv = [self.name]
        module, _sep, attr = self.target.partition(':')
        app = getattr(importlib.import_module(module), attr)
        if module.startswith('neutron.'):
            # neutron's port GET names backref attributes (for example
            # Port.port_forwardings) before any query has configured the
            # mappers; neutron-server's RPC workers used to do it first.
            from sqlalchemy import orm
            orm.configure_mappers()
        return app


def main():
    name, port, target = sys.argv[1:4]
    Application(name, int(port), target).run()


if __name__ == '__main__':
    main()
