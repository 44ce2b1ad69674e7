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

"""The mechanism that runs the rules at nova-compute start-up.

``base`` holds what every rule shares and ``engine`` runs the rules for
one instance; ``contracts`` says what the engine expects of a rule and
of a gate, and ``state`` is what start-up recovery keeps on the compute
manager. ``queued`` is the engine's gate for requests that may still be
on the message queue: ``evidence`` tells a request that reached this
host from one still queued, and ``sweep`` settles, later, the requests
that never came. Imports go one way: engine -> queued -> sweep ->
evidence -> base -> state; contracts and state import nothing of the
package.
"""
