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

"""A read-only audit of stuck servers through the compute API.

``nova-recover audit`` (nova_recover/cmd/audit.py) answers, from an admin
workstation, the questions that start-up recovery answers on a compute
host: did the request behind a task_state reach its host, is that host's
nova-compute alive, and what will nova-recover do at its next start-up.
It reads the same evidence as nova_recover's evidence module, instance
actions and their ``compute_<method>`` events, but through the API, so it
needs admin API credentials and never database credentials.

verdict.py decides from API payloads and does no I/O; client.py reads
them. Neither imports the recovery mechanism, so the audit runs where
nova-compute does not.
"""
