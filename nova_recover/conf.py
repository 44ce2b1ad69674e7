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

"""Options of nova-compute start-up recovery: the [recover] group.

The same file is the overlay's and patched nova's nova/conf/recover.py;
nova.conf registers the group in patched nova, the overlay's install
does otherwise.
"""

from oslo_config import cfg

recover_group = cfg.OptGroup(
    'recover',
    title='Start-up recovery options',
    help='How nova-compute start-up recovers instances left in a '
         'transitional task state, and treats those whose request may '
         'still be on the message queue.')

recover_opts = [
    cfg.IntOpt('queued_request_grace',
               default=600,
               min=0,
               help='Seconds that this nova-compute must have consumed '
                    'its message queue, counted on its monotonic clock '
                    'from when nova started its RPC server (after '
                    'init_host), before a request that the API recorded '
                    'for this host, and that no compute service started, '
                    'is taken as lost rather than queued. However long '
                    'the service was down, no request is taken as lost '
                    'before; a request recorded after the RPC server '
                    'started must also be this old. The deferred sweep '
                    'then leaves the instance as it was before the '
                    'request, and records on the request\'s action that '
                    'it was lost. It also stops waiting, '
                    'with a warning, for a request that lies too far back '
                    'among the instance actions to ever be read. Keep it '
                    'well above the time a busy message queue takes to '
                    'deliver a cast.'),
    cfg.IntOpt('sweep_interval',
               default=60,
               min=1,
               help='Seconds between two passes of the deferred sweep that '
                    'looks for lost requests. The sweep only runs while '
                    'instances that start-up left for a queued request '
                    'are still waiting: its first pass comes this long '
                    'after start-up left the first one, with one more as '
                    'soon as the RPC server started.'),
    cfg.BoolOpt('dry_run',
                default=False,
                help='Log what start-up recovery would do to each '
                     'instance, and recover nothing: every instance goes '
                     'through nova\'s own start-up code without recovery. '
                     'On stock nova with the nova-recover overlay that is '
                     'stock nova\'s start-up, so a dry run behaves as '
                     'stock nova plus the report. In nova carrying the '
                     'start-up recovery patches, where the rules replace '
                     'nova\'s start-up branches for transitional states, '
                     'VIFs are plugged and guests resumed, and every task '
                     'state is left as it was.'),
    cfg.ListOpt('disabled_rules',
                default=[],
                help='Names of start-up recovery rules to switch off, for '
                     'example "resize,live_migration". The instances in a '
                     'disabled rule\'s task states go through nova\'s own '
                     'start-up code without recovery, as dry_run describes '
                     'for each kind of install. An unknown name stops '
                     'nova-compute at start-up.'),
]


def register_opts(conf):
    conf.register_group(recover_group)
    conf.register_opts(recover_opts, group=recover_group)


def list_opts():
    """{group: options}, as every module of nova/conf answers.

    nova.conf.opts.list_opts collects these from each module of nova/conf
    for oslo-config-generator; the overlay's entry point goes through
    nova_recover.opts, which gives the generator its (group, options)
    pairs.
    """
    return {recover_group: recover_opts}
