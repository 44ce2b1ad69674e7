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

"""The overlay's options, for oslo-config-generator.

The generator's entry points (oslo.config.opts) answer (group, options)
pairs; conf.list_opts answers {group: options}, as the modules of
nova/conf do, because patched nova carries conf.py as
nova/conf/recover.py.
"""

from nova_recover import conf


def list_opts():
    return list(conf.list_opts().items())
