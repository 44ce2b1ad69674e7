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

"""Recovery of instances that a nova-compute restart left mid-operation.

ComputeManager._init_instance hands every instance to
``engine.init_instance`` at start-up. ``order`` lists the rules (one
module per operation under ``rules/``) and the gates the engine runs;
``contracts`` says what the engine expects of each; ``base`` holds what
the rules share, ``state`` what start-up recovery keeps on the compute
manager and ``registry`` what it knows of each of nova's task states.
``queued`` is the gate for requests that may still be on the message
queue: ``evidence`` tells a request that reached this host from one
still queued, and ``sweep`` settles, later, the requests that never
came. Imports go one way: order -> rules and gates -> base -> registry
and state; contracts, registry and state import nothing of the package.
"""
