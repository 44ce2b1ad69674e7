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

"""Which rules and gates start-up recovery runs, and in what order.

The only module of the package that names its plug-ins: the engine runs
whatever is listed here, so adding a rule is a new module plus a line
in each list it belongs to, and nothing in the engine changes. One name
per line, so that a list grows or shrinks by whole lines.

GATES are asked, in this order, before any rule, for every instance of
this host (contracts.Gate).

RULES are asked in this order where two could claim one instance
(contracts.Rule): a delete, what the user asked for last, comes before
anything else the instance was doing, and a build that never finished,
which left no guest to act on, before every operation on a guest.

HOST_PASSES run once per start-up, after nova's own start-up steps, for
operations whose instance start-up never sees as this host's
(contracts.HostPass), each with the rule it belongs to.
"""

from . import controls
from . import queued
from .rules import build
from .rules import deleting
from .rules import evacuation
from .rules import image_upload
from .rules import live_migration
from .rules import password
from .rules import pause_suspend
from .rules import powering
from .rules import reboot
from .rules import rebuild
from .rules import rescue
from .rules import resize
from .rules import resize_confirm
from .rules import shelve
from .rules import shelve_offload
from .rules import snapshot
from .rules import soft_delete
from .rules import unshelve

GATES = (
    controls,
    queued,
)

RULES = (
    deleting,
    build,
    image_upload,
    snapshot,
    reboot,
    powering,
    rebuild,
    pause_suspend,
    password,
    soft_delete,
    shelve,
    shelve_offload,
    unshelve,
    rescue,
    resize,
    live_migration,
)

HOST_PASSES = (
    (resize, resize_confirm.CONFIRMS),
    (rebuild, evacuation.EVACUATIONS),
)
