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

"""What start-up recovery keeps on the compute manager between calls.

Start-up recovery runs one instance at a time from init_host, and some
of what it learns must outlive one call: the failures of nova's own
start-up step wait for the end of init_host, the read-ahead's results
wait for their instances, the sweep goes on after start-up. All of it
hangs on the manager, as one StartupRecovery reached through of(), so
that a reader sees every piece in one place and no module invents a
private attribute name of its own on nova's ComputeManager.

This module imports nothing from the package: every other module uses
it (base for the rules' notes), so it sits at the bottom of the import
graph. The tally, the read-ahead slots, the evidence records and the
sweep are classes of the modules that own them (controls, read_ahead,
evidence, sweep); those modules create them here on first use.
"""

import typing

# The one attribute start-up recovery sets on the compute manager.
ATTRIBUTE = '_startup_recovery'


class StartupRecovery(object):
    """Start-up recovery's state for one compute manager."""

    def __init__(self):
        # Exceptions from nova's own start-up step (engine._nova_start_up),
        # raised at the end of init_host (engine.raise_start_up_failure).
        self.failures: list[Exception] = []
        # Instance uuid -> what a rule left for the request's instance
        # action (base.tell_owner), taken by the gates (base.take_notes).
        self.notes: dict[str, set[str]] = {}
        # controls.Tally: what this start-up did, for the summary line;
        # None until the first instance, and again after the summary.
        self.tally: typing.Any = None
        # Instance uuid -> read_ahead._Slot; None until read_ahead.start
        # ran, so that it runs once per start-up.
        self.read_ahead: typing.Optional[dict[str, typing.Any]] = None
        # Instance uuid -> evidence.Record, the evidence last read of it.
        self.evidence: dict[str, typing.Any] = {}
        # sweep.Sweep: the instances left for a request still queued;
        # None until the first of them (or until the RPC server runs).
        self.sweep: typing.Any = None


def of(manager):
    """The manager's StartupRecovery, created on first use.

    Created lazily because the overlay cannot change
    ComputeManager.__init__: it wraps _init_instance and the start-up
    hooks only, and whichever of them runs first finds nothing yet. (The
    patch series could create it in __init__ instead; it keeps this one
    path so that the overlay and the series run the same code.) The first
    use is always init_host's, in one thread: the sweep's thread starts
    later, from an object that already hangs here, so no lock is needed.
    """
    found = getattr(manager, ATTRIBUTE, None)
    if found is None:
        found = StartupRecovery()
        setattr(manager, ATTRIBUTE, found)
    return found
