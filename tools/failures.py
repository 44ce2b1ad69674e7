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

"""Print the failed tests of a subunit v2 stream, each with its traceback.

CI keeps only the end of the output, so tools/run-tests.sh prints this
last: the test ids and the tail of each traceback, not the logs.

    python tools/failures.py [LINES] < stream.subunit
"""

import sys

import subunit
import testtools

FAILED = ('fail', 'uxsuccess')


def main(argv):
    lines = int(argv[1]) if len(argv) > 1 else 30
    failed = []

    def on_test(test):
        if test['status'] in FAILED:
            failed.append(test)

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    subunit.ByteStreamToStreamResult(
        sys.stdin.buffer, non_subunit_name='stdout').run(result)
    result.stopTestRun()
    for test in failed:
        print('FAILED %s' % test['id'])
        trace = test['details'].get('traceback')
        if trace is not None:
            for line in trace.as_text().rstrip().splitlines()[-lines:]:
                print('    ' + line)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
