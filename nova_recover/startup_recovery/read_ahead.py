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

"""Read the evidence of every candidate at once, early in start-up.

Telling a request that died from one still queued costs a candidate two
conductor round trips, one after the other (evidence.py), and init_host
handles one instance at a time, so on a host with many candidates those
waits add up. At the first instance it handles, start-up asks the
conductor once for this host's instances in a state that needs evidence,
and READERS threads of nova's default pool read their evidence while
init_host goes on. Each of those instances then takes its record instead
of reading it.

A record is only taken by an instance that is as it was when the list
was read (the same task_state and updated_at): one that a newer request
changed is read again, as is one that the read-ahead failed to read or
is still reading after a round trip's timeout. A request found too far
back (evidence.TooFarBack) is the one failure that reading again cannot
change, so the instance takes that answer as it would a record, and is
held for the sweep as if it had read it itself. The read-ahead never
decides anything itself, so its failures cost time, never a wrong
answer.
"""

import threading

from oslo_log import log as logging

import nova.conf
from nova import objects

from . import base
from . import evidence
from . import releases
from . import state

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF

# Reads in flight at once: enough to hide most of the latency of a few
# hundred candidates, few enough not to crowd the conductor's workers or
# nova's default pool.
READERS = 4


class _Slot(object):
    """One instance's read-ahead: what it was listed as, and the result."""

    def __init__(self, instance):
        self.task_state = instance.task_state
        self.updated_at = instance.updated_at
        self.done = threading.Event()
        self.record = None
        # evidence.TooFarBack, which reading again would raise again.
        self.error = None


def start(manager, context):
    """Start reading ahead, once per start-up; never raises."""
    recovery = state.of(manager)
    if recovery.read_ahead is not None:
        return
    slots = recovery.read_ahead = {}
    try:
        listed = objects.InstanceList.get_by_filters(
            context, {'host': manager.host, 'deleted': False,
                      'task_state': sorted(evidence.API_SET)},
            sort_key='created_at', sort_dir='asc', expected_attrs=[])
        todo = [(instance, _Slot(instance)) for instance in listed
                if evidence.needs_evidence(instance)]
    except Exception as exc:
        LOG.warning('Could not list the instances whose start-up needs '
                    'evidence (%s); each reads its own', exc)
        return
    for reader in range(min(READERS, len(todo))):
        share = todo[reader::READERS]
        try:
            releases.spawn(_read, context, share)
        except Exception as exc:
            LOG.warning('Could not start reading evidence ahead (%s); the '
                        'instances read their own', exc)
            continue
        slots.update((instance.uuid, slot) for instance, slot in share)


def _read(context, share):
    """Read, in list order, the evidence of one reader's share."""
    for instance, slot in share:
        try:
            operation = evidence.API_SET[instance.task_state]
            slot.record = evidence.load(context, instance, operation.actions)
        except evidence.TooFarBack as exc:
            slot.error = exc
        except Exception as exc:
            LOG.debug('Reading ahead failed (%s); the instance reads its '
                      'own evidence', exc, instance=instance)
        finally:
            slot.done.set()


def take(manager, instance):
    """The evidence read ahead for the instance, or None to read it now.

    :raises evidence.TooFarBack: as evidence.load did when reading ahead.
    """
    slots = state.of(manager).read_ahead or {}
    slot = slots.pop(instance.uuid, None)
    if slot is None:
        return None
    if (slot.task_state, slot.updated_at) != (
            base.field(instance, 'task_state'),
            base.field(instance, 'updated_at')):
        return None
    if not slot.done.wait(CONF.rpc_response_timeout):
        return None
    if slot.error is not None:
        raise slot.error
    return slot.record
