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

"""The policy: one module per recovered operation.

Each module opens with the upstream change it continues (or says that it
goes beyond the blueprint), takes the task states it owns (STATES) from
the task-state registry (registry.py) and exposes ``owns(instance)`` and
``recover(manager, context, instance)`` (contracts.Rule). order.py
decides the order they are asked in; a rule never imports the engine,
the evidence or the sweep.
"""
