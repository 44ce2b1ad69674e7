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

"""Tell an operation that reached this host from one still queued.

Placeholder until the queued-or-started work lands: every operation is
taken as having reached the host, which is what stock nova assumes.
"""


def queued(manager, context, instance):
    """Whether the request behind instance.task_state may still be queued.

    True only for a task_state that the API sets before its RPC cast and
    for which nothing shows that the request reached this host: start-up
    then leaves the instance untouched so the queued request can run.
    """
    return False
