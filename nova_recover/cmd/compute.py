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

"""nova-compute with start-up recovery: ``nova-compute-recover``.

Point the nova-compute unit at it (systemd ``ExecStart=nova-compute-recover``
with nova-compute's usual arguments) instead of ``nova-compute``.

The order matters. nova.cmd.compute applies nova's monkey patching when
it is imported (eventlet, if that is the configured backend), and that
must happen before nova or oslo is imported by anything else; install()
imports nova.compute.manager, so it comes second. The overlay then
has to be in place before nova-compute's main() builds the service, whose
init_host() runs _init_instance for every instance on the host. If the
overlay refuses this nova, InstallRefused stops the service here instead
of letting it start without the recovery the operator asked for.
"""

import importlib


def main():
    nova_compute = importlib.import_module('nova.cmd.compute')
    import nova_recover
    nova_recover.install()
    return nova_compute.main()
