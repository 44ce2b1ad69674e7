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

"""The operator's controls over start-up recovery.

Beyond the blueprint. An operator who enables recovery on a host wants
to know what it will do first, to switch one rule off without losing the
others, and to read in the log what it did:

* ``[recover] dry_run`` logs what each rule would do to each instance
  and then runs nova's own start-up code on it without recovery:
  operators try it first on exactly the hosts that need recovery, where
  skipping that code would leave VIFs unplugged and guests not resumed;
* ``[recover] disabled_rules`` hands a rule's states to nova's own
  start-up code without recovery; an unknown name stops nova-compute at
  start-up (check_options) rather than being ignored;
* one INFO line per instance a rule recovered, and one summary line at
  the end of init_host (finished).

It is the engine's first gate, so a disabled or dry-run rule never
reaches the evidence either.

"Nova's own start-up code" is what the engine was given as nova's path.
Under the overlay that is stock nova's _init_instance, whose branches
for some task states (a stop retried, a build put in ERROR) run as they
would without the overlay. In nova carrying the patch series the rules
replaced those branches, so what is left plugs the VIFs and resumes the
guest, and the task state stays as it was for the operator.
"""

import collections

from oslo_log import log as logging

import nova.conf
from nova import exception
from nova.i18n import _

from . import base
from . import state

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF


class UnknownRule(exception.NovaException):
    msg_fmt = _("[recover] disabled_rules names %(unknown)s, which no "
                "start-up recovery rule is called; the rules are "
                "%(known)s")


# Rules renamed after what they own; the old names, which operators
# may have in disabled_rules, still switch off the same rule.
RENAMED_RULES = {
    'image': 'image_upload',
    'migrating': 'live_migration',
    'pause': 'pause_suspend',
    'snapshot_pending': 'snapshot',
}


def rule_name(rule):
    return getattr(rule, '__name__', str(rule)).rsplit('.', 1)[-1]


def disabled_rules():
    """The rules the operator switched off, by their current names."""
    return {RENAMED_RULES.get(name, name)
            for name in CONF.recover.disabled_rules}


def check_options(rules):
    """Refuse, before any instance is touched, a rule name that is wrong.

    A typo in disabled_rules would otherwise leave the rule on without a
    word. A contracts.Gate.
    """
    known = [rule_name(rule) for rule in rules]
    configured = set(CONF.recover.disabled_rules)
    for old in sorted(configured & set(RENAMED_RULES)):
        LOG.warning('[recover] disabled_rules names %(old)s, the old name '
                    'of rule %(new)s; use %(new)s, as the old name will '
                    'stop working in a future release',
                    {'old': old, 'new': RENAMED_RULES[old]})
    unknown = sorted(configured - set(known) - set(RENAMED_RULES))
    if unknown:
        raise UnknownRule(unknown=', '.join(unknown),
                          known=', '.join(known))


def serving(manager):
    """Nothing to do once the RPC server runs. A contracts.Gate."""


class Tally(object):
    """What start-up recovery did on one host, for the summary line."""

    def __init__(self):
        self.instances = 0
        self.candidates = 0
        self.outcomes = collections.Counter()

    def line(self):
        # A lost race means a newer request took the instance over: it is
        # not stuck, and counts as recovered.
        recovered = (self.outcomes[base.RECOVERED] +
                     self.outcomes[base.LOST_RACE])
        done = sum(self.outcomes.values())
        return ('start-up recovery: %d instances, %d recovered, %d errored, '
                '%d left for queued requests, %d lost requests, %d failed'
                % (self.instances, recovered, self.outcomes[base.ERRORED],
                   max(self.candidates - done, 0),
                   self.outcomes[base.LOST], self.outcomes[base.FAILED]))


def tally(manager):
    """This start-up's Tally, started at its first instance."""
    recovery = state.of(manager)
    if recovery.tally is None:
        recovery.tally = Tally()
    return recovery.tally


def finished(manager):
    """Log the summary line and start the next start-up's count afresh.

    A contracts.Gate: called at the end of init_host.
    """
    LOG.info(tally(manager).line())
    state.of(manager).tally = None


def holds(request):
    """Hold back what the operator switched off or asked to see only.

    A contracts.Gate: request.nova_path runs nova's own start-up code for
    what is held back, without recovery (see the module's docstring for
    what that code is under the overlay and in patched nova).
    """
    counts = tally(request.manager)
    counts.instances += 1
    rule, instance = request.rule, request.instance
    if rule is None and request.task_state is None:
        return False
    if rule is not None and rule_name(rule) in disabled_rules():
        LOG.info('start-up recovery: rule %(rule)s is disabled; task_state '
                 '%(task_state)s goes to nova\'s own start-up code without '
                 'recovery',
                 {'rule': rule_name(rule), 'task_state': instance.task_state},
                 instance=instance)
        request.nova_path(request.context, instance)
        return True
    if CONF.recover.dry_run:
        LOG.info('start-up recovery (dry run): rule %(rule)s would recover '
                 'task_state %(task_state)s, vm_state %(vm_state)s, '
                 'power_state %(power_state)s, unless the request is still '
                 'queued; nothing changed',
                 {'rule': rule_name(rule) if rule else 'nova',
                  'task_state': instance.task_state,
                  'vm_state': instance.vm_state,
                  'power_state': instance.power_state}, instance=instance)
        # Then nova's own start-up code, without recovery.
        request.nova_path(request.context, instance)
        return True
    counts.candidates += 1
    return False


def recovered(request, outcome):
    """Count and log one instance that start-up recovery handled."""
    tally(request.manager).outcomes[outcome] += 1
    rule, instance = request.rule, request.instance
    LOG.info('start-up recovery: rule=%(rule)s task_state=%(task_state)s '
             'outcome=%(outcome)s vm_state=%(vm_state)s',
             {'rule': rule_name(rule) if rule else 'nova',
              'task_state': request.task_state, 'outcome': outcome,
              'vm_state': instance.vm_state}, instance=instance)
