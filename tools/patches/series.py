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

"""What each patch of the series copies, in series order.

One Entry is one patch. It copies files that exist in this repository
as they are: ``modules`` from nova_recover/startup_recovery/ (the same
path under nova/compute/startup_recovery/), ``files`` from elsewhere
(FILES says where each lands) and ``tests`` from nova_recover/tests/
(tools/gen_patches.py says where each lands and which module names it
maps). Then it applies the release's plain integration diff of the same
name, if there is one (tools/patches/integration/<release>/<name>.diff):
the hook in nova's manager, the option registration and the nova tests
that the patch changes.

The order is a reviewer's: the registry of facts, the evidence of
whether a request arrived, the framework, the parts that settle a
request that never came, the gate, and then one rule after the other.
Every rule therefore meets the gate from its first patch on and never
sees a request that may still be queued. A module's tests come with it
unless they need a later module; the entry that brings them says so.
A helper that only a rule drives (rules/resize_revert.py) is tested
through that rule, in the rule's patch, which comes next.
"""

import collections

Entry = collections.namedtuple(
    'Entry', ['name', 'modules', 'files', 'tests', 'subject'])


def entry(name, modules=(), files=(), tests=(), subject=None):
    return Entry(name, tuple(modules), tuple(files), tuple(tests), subject)


# Files outside the package: {key: (source, path in nova's tree)}. nova
# keeps every option under nova/conf (hacking check N342).
FILES = {
    'conf': ('nova_recover/conf.py', 'nova/conf/recover.py'),
}

SERIES = [
    entry('registry', ['__init__', 'registry'],
          subject='Record what nova does with each of its task states',
          tests=['unit/recovery/test_registry']),
    entry('contracts', ['contracts', 'state', 'order'],
          subject='State what start-up recovery expects of a rule and of a '
                  'gate',
          tests=['unit/recovery/test_state', 'unit/recovery/test_contracts']),
    entry('fixtures', tests=['fixtures', 'unit/recovery/test_fixtures'],
          subject='Test start-up recovery as nova-compute runs it, without '
                  'a database'),
    entry('evidence', ['evidence'],
          subject='Read from instance actions whether a request reached '
                  'this host',
          tests=['unit/recovery/test_evidence']),
    entry('events', ['events'],
          subject='Say on the request\'s instance action what the restart '
                  'did to it',
          tests=['unit/recovery/test_events']),
    entry('base', ['base'],
          subject='Share the compare-and-swap and the ERROR with a fault '
                  'between start-up recovery rules',
          tests=['unit/recovery/test_base', 'unit/base']),
    entry('engine', ['engine'],
          subject='Route compute manager _init_instance through start-up '
                  'recovery',
          tests=['unit/recovery/test_engine']),
    entry('releases', ['releases'], tests=['unit/recovery/test_releases'],
          subject='Ask nova 31, 33 and 34 alike for a thread and the '
                  'service user'),
    entry('read_ahead', ['read_ahead'],
          subject='Read the evidence of every candidate at once, early in '
                  'start-up',
          tests=['unit/recovery/test_read_ahead',
                 'unit/recovery/test_evidence_moves',
                 'unit/recovery/test_evidence_window']),
    entry('glance_cleanup', ['glance_cleanup'],
          subject='Find the image a dead snapshot, backup or shelve left in '
                  'glance'),
    entry('options', files=['conf'],
          subject='Add the [recover] options of start-up recovery'),
    entry('sweep', ['sweep'],
          subject='Settle later what start-up left for a request that '
                  'never came',
          tests=['unit/recovery/test_sweep']),
    entry('serving', tests=['unit/recovery/test_sweep_serving'],
          subject='Tell start-up recovery when nova-compute starts reading '
                  'its queue'),
    entry('queued', ['queued', 'lost_request'],
          tests=['unit/recovery/test_queued'],
          subject='Leave an instance whose request may still be queued to '
                  'that request'),
    entry('build', ['rules/build', 'rules/__init__'],
          tests=['unit/rules/test_build']),
    entry('guest_facts', ['guest_facts'],
          subject='Ask the virt driver how far an interrupted operation '
                  'got',
          tests=['unit/recovery/test_guest_facts']),
    entry('image_upload', ['rules/image_upload'],
          tests=['unit/rules/test_image_upload']),
    entry('deleting', ['rules/deleting'],
          tests=['unit/rules/test_deleting']),
    entry('snapshot', ['rules/snapshot'],
          tests=['unit/rules/test_snapshot',
                 'unit/recovery/test_glance_cleanup']),
    entry('reboot', ['rules/reboot'], tests=['unit/rules/test_reboot']),
    entry('powering', ['rules/powering'],
          tests=['unit/rules/test_powering']),
    entry('engine_rules', tests=['unit/recovery/test_engine_rules'],
          subject='Test start-up recovery over its first rules together'),
    entry('controls', ['controls'], tests=['unit/recovery/test_controls'],
          subject='Let operators dry-run or switch off start-up recovery '
                  'rules'),
    entry('rebuild', ['rules/rebuild'], tests=['unit/rules/test_rebuild']),
    entry('evacuation', ['rules/evacuation', 'host_passes'],
          tests=['unit/rules/test_evacuation']),
    entry('pause_suspend', ['rules/pause_suspend'],
          tests=['unit/rules/test_pause_suspend']),
    entry('password', ['rules/password'],
          tests=['unit/rules/test_password']),
    entry('soft_delete', ['rules/soft_delete'],
          tests=['unit/rules/test_soft_delete']),
    entry('rescue', ['rules/rescue'], tests=['unit/rules/test_rescue']),
    entry('shelve_offload', ['rules/shelve_offload'],
          tests=['unit/rules/shelve_base',
                 'unit/rules/test_shelve_offload']),
    entry('shelve', ['rules/shelve'], tests=['unit/rules/test_shelve']),
    entry('unshelve', ['rules/unshelve'],
          tests=['unit/rules/test_unshelve']),
    entry('resize_revert', ['rules/resize_revert']),
    entry('resize', ['rules/resize'], tests=['unit/rules/test_resize']),
    entry('resize_confirm', ['rules/resize_confirm'],
          tests=['unit/rules/test_resize_confirm']),
    entry('live_migration', ['rules/live_migration'],
          tests=['unit/rules/test_live_migration']),
]
