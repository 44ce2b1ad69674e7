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

"""Recover the operations whose instance start-up sees as another host's.

Some operations that die on this host leave their instance on another
host's record: an evacuation to this host still names the source, and
a resize confirm that died on this source host shows no task_state on
an instance of the destination. init_instance never sees them; the
rules that own them define a contracts.HostPass each, which order.py
lists, and this module runs them once per start-up, through the same
gates as any instance and with the same outcomes.
"""

from oslo_log import log as logging

from nova import exception

from . import base
from . import contracts
from . import engine
from . import order

LOG = logging.getLogger(__name__)


def run(manager, context):
    """Run order.HOST_PASSES, once per start-up; never raises.

    Called after nova's own start-up steps: the driver must be ready to
    destroy a half-spawned guest. The instances these passes find are
    not this host's (an evacuation to this host still names the source;
    a confirm that died on this source is on the destination), so
    init_instance never sees them.
    """
    for rule, host_pass in order.HOST_PASSES:
        _run_one(manager, context, rule, host_pass)


def _run_one(manager, context, rule, host_pass):
    """Recover what host_pass finds, one (instance, migration) at a time.

    The instances are not this host's, so nova's start-up path never
    runs for them (the gates get a path that does nothing), and the
    gates may hold one back as for any instance: the operator's
    controls apply, and a request still queued for this host is left to
    run. A failure of one instance never stops the others.
    """
    try:
        found = host_pass.find(manager, context)
    except Exception:
        LOG.exception('Start-up recovery could not look for the %s '
                      'operations that this host did not finish',
                      rule.__name__.rsplit('.', 1)[-1])
        return
    for instance, migration in found:
        # Nova's path does nothing for another host's instance, and a
        # lost request is not this host's to settle.
        told = contracts.GateRequest(
            manager=manager, context=context, instance=instance,
            task_state=instance.task_state, rule=rule,
            nova_path=lambda context, instance: None,
            report=engine.recovered, migration=migration,
            unshown=host_pass.request)
        if any(gate.holds(told) for gate in order.GATES):
            continue
        task_state = told.task_state
        try:
            host_pass.recover(manager, context, instance, migration)
        except exception.UnexpectedTaskStateError as exc:
            LOG.info('Start-up recovery lost a race, leaving the instance '
                     'alone: %s', exc, instance=instance)
            outcome = base.LOST_RACE
        except Exception as exc:
            LOG.exception('Start-up recovery of %(op)s failed',
                          {'op': host_pass.request or
                           base.operation_of(instance)},
                          instance=instance)
            # Nothing interrupted shows on a confirm's instance: it is left
            # as it is, and the next start-up finds the confirm again.
            outcome = (base.FAILED if task_state is None else
                       engine.fail(context, instance, task_state, exc))
        else:
            outcome = engine.settled(instance)
        engine.recovered(told, outcome)
