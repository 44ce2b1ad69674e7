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

"""The end-state table: where every census row ends, field by field.

end_states.json holds one row per census row (task state, vm_state and
guest before the restart, and where the request stood), with every field
the owner of the server sees afterwards. The census test compares each
row it runs with this table and fails on any difference, so the table
stays true; tools/gen_end_states.py writes it from a census run, and
doc/source/outcomes.rst is rendered from it (a unit test keeps the two
equal). A changed end therefore shows up as a diff of the table, which
a reviewer reads with the change that made it.

ERROR is allowed only where the guest is gone (the table's guest is
``none``) or where UNRECONCILABLE says why the server cannot be put back
safely; test_end_states checks that for every row.
"""

import collections
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, 'end_states.json')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DOC = os.path.join(ROOT, 'doc', 'source', 'outcomes.rst')

#: Where the request stood when nova-compute died.
QUEUED = 'queued'
LOST = 'lost'
REACHED = 'reached'
STOOD = (QUEUED, LOST, REACHED)

#: The compared fields of a row, in the table's column order.
FIELDS = ('vm_state', 'task_state', 'host', 'flavor', 'power_state',
          'guest', 'images', 'events', 'fault', 'calls')

#: What the owner can do from ERROR (the API allows these from ERROR, and
#: refuses unshelve, resize revert and resize confirm).
FROM_ERROR = 'delete, rebuild or hard reboot'

#: Task states whose rows may end in ERROR over a guest that still exists,
#: and why no other end is safe.
UNRECONCILABLE = {
    'scheduling': 'the build never set up its network and volumes',
    'block_device_mapping': 'the build never finished attaching its '
                            'volumes',
    'networking': 'the build never finished setting up its network',
    'spawning': 'the build may not have finished its network, volumes '
                'and allocations, and nothing records how far it got',
    'rebuilding': "the API already wrote the new image into the server's "
                  'record while its disk still holds the old one',
    'rebuild_block_device_mapping': 'the old disk may be gone and the new '
                                    'one not yet written',
    'rebuild_spawning': 'the new disk may be written only in part',
}

# Where in its operation a task state says nova-compute died, for the
# states nova-compute itself sets; the API sets the others before its
# cast, and nova-compute keeps them through the driver call.
PHASE = {
    'scheduling': 'before the driver',
    'block_device_mapping': 'before the driver',
    'networking': 'before the driver',
    'spawning': 'inside the driver (spawn)',
    'image_snapshot': 'inside the driver (snapshot)',
    'image_pending_upload': 'after the driver, before the upload',
    'image_uploading': 'after the driver, during the upload',
    'reboot_pending': 'before the driver',
    'reboot_pending_hard': 'before the driver',
    'reboot_started': 'inside the driver (reboot)',
    'reboot_started_hard': 'inside the driver (reboot)',
    'rebuild_block_device_mapping': 'inside the rebuild, before spawn',
    'rebuild_spawning': 'inside the driver (spawn)',
    'resize_migrating': 'inside the driver (migrate_disk_and_power_off)',
    'resize_migrated': 'after the source, before the destination',
    'resize_finish': 'inside the driver (finish_migration)',
    'shelving_image_pending_upload': 'after the driver, before the upload',
    'shelving_image_uploading': 'after the driver, during the upload',
}
API_PHASE = 'the request reached nova-compute; the guest shows how far'


def key(task_state, vm_state, guest, stood):
    return '|'.join((task_state, vm_state, guest, stood))


def load(path=TABLE):
    """{key: row}, in the table's order."""
    with open(path) as f:
        return collections.OrderedDict(
            (key(r['task_state_before'], r['vm_state_before'],
                 r['guest_before'], r['stood']), r)
            for r in json.load(f))


def dump(rows, path=TABLE):
    """Write rows (a list of dicts) as the table, one row per line."""
    with open(path, 'w') as f:
        f.write('[\n')
        f.write(',\n'.join(json.dumps(row, sort_keys=True) for row in rows))
        f.write('\n]\n')


def differences(expected, actual):
    """{field: (expected, actual)} over FIELDS."""
    return {name: (expected.get(name), actual.get(name))
            for name in FIELDS if expected.get(name) != actual.get(name)}


def errored(row):
    """Whether the row puts a server in ERROR that was not in it before."""
    return (row['vm_state'] == 'error' and
            row['vm_state_before'] != 'error')


def error_allowed(row):
    """Why ERROR is the right end of this row, or None if it is not."""
    if row['guest'] == 'none' and row['guest_before'] == 'none':
        return 'there is no guest'
    if row['guest'] == 'none':
        return 'the guest is gone'
    return UNRECONCILABLE.get(row['task_state_before'])


def reason(row):
    """One line: why the row ends where it ends."""
    if row['stood'] == QUEUED:
        return ('still on the queue: left as it is, for nova-compute to run '
                'once it consumes its queue')
    if row['stood'] == LOST:
        return ('never reached this host: left as it was before the '
                'request; its action says the request was lost')
    if row['vm_state'] == 'deleted':
        return 'the user asked for the delete, which start-up finished'
    if errored(row):
        return '%s; %s. Next: %s' % (row['fault'], error_allowed(row),
                                     FROM_ERROR)
    calls = [c for c in row['calls'].split(', ')
             if c and c != 'plug_vifs']
    done = ('ran ' + ', '.join(calls)) if calls else 'no guest operation'
    if row['vm_state'] == 'error':
        return 'was in ERROR before the request and stays there; ' + done
    return '%s; the server is %s as its guest shows' % (done,
                                                         row['vm_state'])


def phase(row):
    if row['stood'] != REACHED:
        return row['stood']
    return PHASE.get(row['task_state_before'], API_PHASE)


HEADER = """\
..
    Generated by tools/gen_end_states.py from
    nova_recover/tests/functional/end_states.json; do not edit by hand.

==========
End states
==========

Where every server ends after a nova-compute restart, by the task state
it was left in, its vm_state and guest before the restart, and where the
request stood. Each row is one instance of the start-up census
(nova_recover/tests/functional/test_census.py): a real ComputeManager,
real objects and database, a guest on the fake driver. The census fails
on any field that differs from this table.

- *stood*: ``queued`` (the request is still on the RPC queue),
  ``lost`` (this service consumed its queue for the grace and the request
  never came) or ``reached`` (nova-compute ran it and died); for a reached
  row, *phase* says where in the operation, and the guest shows whether
  the driver's change took effect.
- *host*: ``this`` is the restarted host; *flavor*: ``old`` or ``new``
  for a resize's flavors; *images*: the operation's images and their
  status (``deleted`` when start-up removed an unfinished upload);
  *events*: the instance action events, ``action/event:result``;
  *calls*: the driver calls start-up made, nova's own included.
- ERROR appears only where the guest is gone or the server cannot be put
  back safely; the reason then says why, and what the owner can do next:
  {from_error}. Unshelve, resize revert and resize confirm are refused
  from ERROR.

{counts}

"""


def _counts(rows):
    errors = [r for r in rows if errored(r)]
    with_guest = [r for r in errors if r['guest_before'] != 'none']
    by_stood = collections.Counter(r['stood'] for r in rows)
    return ('- rows: %d (%s)\n- rows that end in ERROR: %d, %d of them '
            'with a guest before the restart' % (
                len(rows), ', '.join('%d %s' % (by_stood[s], s)
                                     for s in STOOD),
                len(errors), len(with_guest)))


def _cell(text):
    # Not "-": a cell that starts with it is a bullet list to docutils.
    return text.replace('|', '/') if text else '(none)'


def render(rows):
    """The reStructuredText of the table, one section per operation."""
    out = [HEADER.format(from_error=FROM_ERROR, counts=_counts(rows))]
    by_op = collections.OrderedDict()
    for row in rows:
        by_op.setdefault(row['operation'], []).append(row)
    for operation, op_rows in by_op.items():
        title = operation[:1].upper() + operation[1:]
        out.append('%s\n%s\n\n' % (title, '-' * len(title)))
        out.append('.. list-table::\n   :header-rows: 1\n\n')
        out.append('   * - task state / vm_state / guest / stood\n'
                   '     - phase\n'
                   '     - end: vm_state, task, host, flavor, power, '
                   'guest\n'
                   '     - images / events / fault\n'
                   '     - calls\n'
                   '     - reason\n')
        for row in op_rows:
            end = ', '.join(_cell(row[f]) for f in (
                'vm_state', 'task_state', 'host', 'flavor', 'power_state',
                'guest'))
            out.append(
                '   * - %s / %s / %s / %s\n     - %s\n     - %s\n'
                '     - %s / %s / %s\n     - %s\n     - %s\n' % (
                    row['task_state_before'], row['vm_state_before'],
                    row['guest_before'], row['stood'], phase(row), end,
                    _cell(row['images']), _cell(row['events']),
                    _cell(row['fault']), _cell(row['calls']),
                    reason(row)))
        out.append('\n')
    return ''.join(out).rstrip('\n') + '\n'
