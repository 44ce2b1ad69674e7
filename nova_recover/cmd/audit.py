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

"""``nova-recover audit``: which servers are stuck, where, and why.

Read-only: it lists every server with a task_state across all projects,
judges each one from its instance actions and its host's nova-compute
service (nova_recover/audit/verdict.py), and prints a table or JSON.

The exit status is for monitoring checks: 0 when nothing is stuck, 1 when
something is, 2 on an error (including a usage error, as argparse does).
"""

import argparse
import json
import sys

from openstack import exceptions
from oslo_utils import timeutils
import prettytable

from nova_recover.audit import client
from nova_recover.audit import verdict

OK = 0
STUCK = 1
ERROR = 2

COLUMNS = ('Server', 'Project', 'Host', 'Task State', 'VM State',
           'Power State', 'Age', 'Verdict', 'Next Start-up')


def build_parser(cloud):
    parser = argparse.ArgumentParser(
        prog='nova-recover',
        description='Operator tools of nova-recover.')
    commands = parser.add_subparsers(dest='command', metavar='<command>')
    commands.required = True
    audit = commands.add_parser(
        'audit', parents=[cloud],
        help='list stuck servers and what start-up will do to them',
        description='List every server with a task_state, across all '
                    'projects, with a verdict on whether it is stuck and '
                    'what nova-recover will do to it at its host\'s next '
                    'nova-compute start-up. Changes nothing.')
    audit.add_argument('--host', metavar='<host>',
                       help='only servers on this compute host')
    audit.add_argument('--older-than', metavar='SECONDS', type=int,
                       default=0,
                       help='only servers that have been in their '
                            'task_state for at least this long')
    audit.add_argument('--grace', metavar='SECONDS', type=int,
                       default=verdict.DEFAULT_GRACE,
                       help='how long a request may wait for, or an '
                            'operation go without, any change before it '
                            'counts as lost or stalled; keep it equal to '
                            '[recover] queued_request_grace (default: '
                            '%(default)s)')
    audit.add_argument('-f', '--format', choices=('table', 'json'),
                       default='table', help='output format')
    audit.add_argument('--long', action='store_true',
                       help='add the reason for each verdict to the table')
    return parser


def _age(server, now):
    updated = verdict.parse_time(server.get('updated'))
    return int((now - updated).total_seconds())


def audit(reader, host=None, older_than=0, grace=verdict.DEFAULT_GRACE,
          now=None, outcomes=None):
    """The verdicts on every server with a task_state (on host).

    Without outcomes, the coverage table is read for the first server to
    judge: a cloud with nothing in flight does not pay for the import.
    """
    now = verdict.parse_time(now) if now else timeutils.utcnow()
    services = reader.services()
    found = []
    for server in reader.servers(host):
        if not server.get('OS-EXT-STS:task_state'):
            continue
        if _age(server, now) < older_than:
            continue
        if outcomes is None:
            outcomes = verdict.load_outcomes()
        try:
            actions = reader.actions(server['id'])
            shown = {request_id: reader.action(server['id'], request_id)
                     for request_id in verdict.actions_to_show(server,
                                                               actions)}
        except exceptions.NotFoundException:
            # Deleted while we read it: nothing is stuck any more.
            continue
        actions = [shown.get(action['request_id'], action)
                   for action in actions]
        found.append(verdict.judge(server, actions, services, now,
                                   grace=grace, outcomes=outcomes))
    found.sort(key=lambda v: (v.host or '', -v.age, v.server))
    return found


def format_age(seconds):
    """Like 45s, 12m05s, 3h02m, 2d04h: short enough for a table cell."""
    seconds = max(seconds, 0)
    if seconds < 60:
        return '%ds' % seconds
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return '%dm%02ds' % (minutes, seconds)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return '%dh%02dm' % (hours, minutes)
    days, hours = divmod(hours, 24)
    return '%dd%02dh' % (days, hours)


def to_dict(found):
    return {
        'server': found.server,
        'name': found.name,
        'project': found.project,
        'host': found.host,
        'task_state': found.task_state,
        'vm_state': found.vm_state,
        'power_state': found.power_state,
        'age_seconds': found.age,
        'verdict': found.verdict,
        'verdict_host': found.verdict_host,
        'stuck': verdict.is_stuck(found),
        'reason': found.reason,
        'next_startup': found.next_startup,
        'request_id': found.request,
        'event': found.event,
    }


def render_table(verdicts, long=False):
    columns = COLUMNS + (('Reason',) if long else ())
    table = prettytable.PrettyTable(columns)
    table.align = 'l'
    for found in verdicts:
        row = [found.server, found.project, found.host or '',
               found.task_state, found.vm_state, found.power_state,
               format_age(found.age), verdict.describe(found),
               found.next_startup]
        if long:
            row.append(found.reason)
        table.add_row(row)
    return table.get_string()


def main(argv=None, conn=None, now=None, stdout=None, stderr=None):
    """The console script; conn, now and the streams are for tests."""
    argv = sys.argv[1:] if argv is None else list(argv)
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        cloud, config = client.cloud_parser(argv)
    except Exception as exc:
        print('nova-recover: error: %s' % exc, file=stderr)
        return ERROR
    args = build_parser(cloud).parse_args(argv)
    try:
        if conn is None:
            options, _rest = cloud.parse_known_args(argv)
            conn = client.connect(config, options)
        verdicts = audit(client.Reader(conn), host=args.host,
                         older_than=args.older_than, grace=args.grace,
                         now=now)
    except Exception as exc:
        message = str(exc)
        details = getattr(exc, 'details', None)
        if details and details not in message:
            message = '%s: %s' % (message, details)
        print('nova-recover audit: error: %s' % message, file=stderr)
        return ERROR
    if args.format == 'json':
        json.dump([to_dict(found) for found in verdicts], stdout, indent=2)
        stdout.write('\n')
    elif verdicts:
        stdout.write(render_table(verdicts, long=args.long) + '\n')
    else:
        stdout.write('No server has a task_state%s.\n' % (
            ' for %ds or more' % args.older_than if args.older_than else ''))
    return STUCK if any(verdict.is_stuck(v) for v in verdicts) else OK


if __name__ == '__main__':
    sys.exit(main())
