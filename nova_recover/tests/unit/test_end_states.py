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

"""The end-state table keeps the promises made to a server's owner.

The census checks that every row ends as the table says; these tests
check that what the table says is acceptable, so a regenerated table
that puts a healthy server in ERROR, leaves an empty image behind or
keeps a task state fails here, whatever the code did.
"""

from nova import test

from nova_recover.tests.functional import end_states

UNFINISHED = ('queued', 'saving')


class EndStatesTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.rows = list(end_states.load().values())

    def _each(self, check):
        bad = ['%s: %s' % (end_states.key(
            r['task_state_before'], r['vm_state_before'],
            r['guest_before'], r['stood']), problem)
            for r in self.rows for problem in [check(r)] if problem]
        self.assertEqual([], bad)

    def test_document_is_the_table(self):
        with open(end_states.DOC) as f:
            self.assertEqual(
                end_states.render(self.rows), f.read(),
                'doc/source/outcomes.rst is stale: run '
                'tools/gen_end_states.py --doc-only')

    def test_every_stood_is_covered(self):
        self.assertEqual(set(end_states.STOOD),
                         {r['stood'] for r in self.rows})

    def test_error_only_where_the_guest_is_gone_or_unsafe(self):
        def check(row):
            if end_states.errored(row):
                if not row['fault']:
                    return 'ERROR without a fault'
                if end_states.error_allowed(row) is None:
                    return 'ERROR over a guest that is still %s' % (
                        row['guest'])
        self._each(check)

    def test_only_a_queued_request_keeps_its_task_state(self):
        def check(row):
            if row['stood'] == end_states.QUEUED:
                if (row['task_state'], row['vm_state'], row['guest']) != (
                        row['task_state_before'], row['vm_state_before'],
                        row['guest_before']):
                    return 'a queued request was touched'
            elif row['task_state'] is not None:
                return 'still %s' % row['task_state']
        self._each(check)

    def test_a_lost_request_leaves_only_a_note(self):
        def check(row):
            if row['stood'] != end_states.LOST:
                return None
            if row['guest'] != row['guest_before']:
                return 'the guest changed'
            if row['fault'] is not None:
                return 'a fault'
            if 'compute_request_lost:Error' not in row['events']:
                return 'no note that the request was lost'
            if row['calls'].replace('plug_vifs', '').strip(', '):
                return 'guest operations: %s' % row['calls']
        self._each(check)

    def test_no_unfinished_image_outlives_start_up(self):
        def check(row):
            if row['stood'] == end_states.QUEUED:
                return None
            left = [image for image in row['images'].split(', ')
                    if image.endswith(UNFINISHED)]
            if left:
                return 'left %s' % ', '.join(left)
        self._each(check)

    def test_a_stop_is_rerun_as_a_clean_shutdown(self):
        def check(row):
            if 'power_off(hard)' in row['calls']:
                return 'hard power off'
        self._each(check)
