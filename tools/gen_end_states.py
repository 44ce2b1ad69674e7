#!/usr/bin/env python3
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

"""Write the end-state table from a census run, and its document.

Usage: tools/gen_end_states.py [--doc-only | --check]

Runs every census row once (nova_recover/tests/functional/test_census.py)
and writes nova_recover/tests/functional/end_states.json and
doc/source/outcomes.rst. --doc-only renders the document from the JSON
as it is; --check exits 1 when the document is not that rendering.
Review the JSON's diff: it is every end that the change moved.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from nova_recover.tests.functional import end_states  # noqa: E402


def collect():
    """The table's rows, in census order."""
    from nova_recover.tests.functional import test_census

    sink = []

    class Collect(test_census.CensusBase):
        def test_collect(self):
            results = self.census(test_census.all_rows())
            sink.extend(self.ends[row] for row, _outcome in results)

    result = unittest.TestResult()
    Collect('test_collect').run(result)
    problems = result.errors + result.failures
    if problems:
        sys.exit(problems[0][1])
    return sink


def main():
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--doc-only', action='store_true')
    group.add_argument('--check', action='store_true')
    args = parser.parse_args()
    if args.check:
        with open(end_states.DOC) as f:
            current = f.read()
        if current != end_states.render(list(end_states.load().values())):
            print('%s is stale: run tools/gen_end_states.py --doc-only'
                  % end_states.DOC)
            return 1
        return 0
    if not args.doc_only:
        end_states.dump(collect())
    with open(end_states.DOC, 'w') as f:
        f.write(end_states.render(list(end_states.load().values())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
