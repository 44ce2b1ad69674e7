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

"""Start-up recovery under test as a real nova-compute runs it.

nova-compute has no database (nova/cmd/compute.py): every remotable call
goes to nova-conductor. ProductionShape makes a test hold to that too,
so that a test against a database still proves that start-up recovery
never reads it directly.
"""

import collections
import contextlib
import functools
import threading
import time

import fixtures
import oslo_messaging as messaging
from oslo_serialization import jsonutils

from nova.compute import manager as compute_manager
from nova.conductor import manager as conductor_manager
from nova.db.main import api as db_api
from nova import exception
from nova.objects import base as objects_base
from nova import rpc
from nova.tests import fixtures as nova_fixtures


_where = threading.local()


def on_compute_side():
    """Whether the calling thread runs as nova-compute (no database)."""
    return (getattr(_where, 'compute', 0) > 0 and
            not getattr(_where, 'conductor', False))


@contextlib.contextmanager
def _compute_side():
    _where.compute = getattr(_where, 'compute', 0) + 1
    try:
        yield
    finally:
        _where.compute -= 1


@contextlib.contextmanager
def _conductor_side():
    before = getattr(_where, 'conductor', False)
    _where.conductor = True
    try:
        yield
    finally:
        _where.conductor = before


# ``ahead``: made by a read-ahead reader (read_ahead.py), beside start-up
# rather than in its way.
RoundTrip = collections.namedtuple('RoundTrip', ['method', 'target', 'ahead'])


class ConductorIndirection(object):
    """nova-conductor as nova-compute reaches it, served in-process.

    What nova/cmd/compute.py sets as NovaObject.indirection_api, with a
    real ConductorManager behind it. Arguments and results cross as JSON
    of NovaObjectSerializer primitives, as they do over RPC, and the
    conductor side alone may use the database. It is only "there" for
    compute-side code: everything else in the process keeps nova's
    direct calls, which is how the test harness runs the other services.
    """

    def __init__(self):
        self.conductor = conductor_manager.ConductorManager()
        self.serializer = rpc.RequestContextSerializer(
            objects_base.NovaObjectSerializer())
        self.round_trips = []
        # CPU time spent on the conductor's side of the calls, which a
        # real nova-compute does not spend: it waits for another process.
        # CPU, not wall, time: a call served in a read-ahead thread takes
        # turns with start-up for the interpreter.
        self.conductor_s = 0.0
        # The part of it served to read-ahead threads, and those threads'
        # own CPU time, conductor included (ProductionShape counts it).
        self.conductor_ahead_s = 0.0
        self.ahead_cpu_s = 0.0
        # Slept by each read-ahead round trip (benchmarks/): their latency
        # is waited out for real, beside start-up, not added afterwards.
        self.ahead_latency_s = 0.0
        self._lock = threading.Lock()
        # A real conductor serves each call on a database connection of
        # its own; here every call shares the test database's one sqlite
        # connection, so calls from the read-ahead's threads and from
        # start-up take turns (under nova 33's native threading, two at
        # once broke each other's transaction).
        self._serving = threading.Lock()

    def __bool__(self):
        return on_compute_side()

    def _call(self, context, method, target, **kwargs):
        ahead = getattr(_where, 'ahead', False)
        self.round_trips.append(RoundTrip(method, target, ahead))
        if ahead and self.ahead_latency_s:
            time.sleep(self.ahead_latency_s)
        wire = jsonutils.dumps({
            'context': self.serializer.serialize_context(context),
            'args': {name: self.serializer.serialize_entity(context, value)
                     for name, value in kwargs.items()}})
        with _conductor_side(), self._serving:
            started = time.thread_time()
            try:
                reply = self._serve(method, wire)
            finally:
                self.count(time.thread_time() - started, ahead)
        return self.serializer.deserialize_entity(context,
                                                  jsonutils.loads(reply))

    def count(self, conductor_s=0.0, ahead=False, ahead_cpu_s=0.0):
        with self._lock:
            self.conductor_s += conductor_s
            if ahead:
                self.conductor_ahead_s += conductor_s
            self.ahead_cpu_s += ahead_cpu_s

    def _serve(self, method, wire):
        """The conductor's side of a call: the reply, as JSON."""
        message = jsonutils.loads(wire)
        ctxt = self.serializer.deserialize_context(message['context'])
        args = {name: self.serializer.deserialize_entity(ctxt, value)
                for name, value in message['args'].items()}
        try:
            result = getattr(self.conductor, method)(ctxt, **args)
        except messaging.ExpectedException as exc:
            # The RPC layer re-raises nova's own exception remotely.
            raise exc.exc_info[1]
        return jsonutils.dumps(self.serializer.serialize_entity(ctxt, result))

    def object_class_action_versions(self, context, objname, objmethod,
                                     object_versions, args, kwargs):
        return self._call(context, 'object_class_action_versions',
                          '%s.%s' % (objname, objmethod),
                          objname=objname, objmethod=objmethod,
                          object_versions=object_versions,
                          args=args, kwargs=kwargs)

    def object_action(self, context, objinst, objmethod, args, kwargs):
        return self._call(context, 'object_action',
                          '%s.%s' % (objinst.obj_name(), objmethod),
                          objinst=objinst, objmethod=objmethod,
                          args=args, kwargs=kwargs)

    def object_backport_versions(self, context, objinst, object_versions):
        return self._call(context, 'object_backport_versions',
                          objinst['nova_object.name'],
                          objinst=objinst, object_versions=object_versions)


class ProductionShape(fixtures.Fixture):
    """Run the overlay's entry points as a real nova-compute runs them.

    nova/cmd/compute.py forbids the database (DISABLE_DB_ACCESS) and
    sends every remotable call to nova-conductor. Here the same holds
    while ComputeManager._init_instance runs (with the nova methods that
    a rule re-runs inside it) and in the functions named by ``threads``,
    which start-up runs in threads of their own (the read-ahead, the
    deferred sweep): a direct database call raises DBNotAllowed, and
    remotable calls go through ConductorIndirection. It wraps the
    _init_instance that ComputeManager has when the fixture starts: one
    that start-up recovery already routes.

    ``round_trips`` lists the conductor calls made so far.

    :param indirection: what serves the calls, a ConductorIndirection by
        default (benchmarks/ passes one whose conductor is a process of
        its own).
    :param threads: (module, function name, ahead) for each function
        that runs compute-side code in a thread of its own; ``ahead``
        marks the reads made ahead of _init_instance, whose round trips
        and CPU time are counted apart. The fixture names none itself,
        so that it serves whichever of them a test uses.
    """

    def __init__(self, indirection=None, threads=()):
        super().__init__()
        self._indirection = indirection
        self._threads = tuple(threads)

    def _setUp(self):
        # Not ``or``: an indirection is false outside compute-side code.
        self.indirection = (ConductorIndirection()
                            if self._indirection is None
                            else self._indirection)
        self.useFixture(nova_fixtures.IndirectionAPIFixture(self.indirection))
        check = db_api._check_db_access

        def check_db_access():
            if on_compute_side():
                raise exception.DBNotAllowed(binary='nova-compute')
            check()

        self.useFixture(fixtures.MonkeyPatch(
            'nova.db.main.api._check_db_access', check_db_access))
        cls = compute_manager.ComputeManager
        self.useFixture(fixtures.MonkeyPatch(
            'nova.compute.manager.ComputeManager._init_instance',
            _on_compute_side(cls.__dict__['_init_instance'])))
        for module, name, ahead in self._threads:
            func = _on_compute_side(getattr(module, name), ahead=ahead)
            self.useFixture(fixtures.MonkeyPatch(
                '%s.%s' % (module.__name__, name),
                self._counted(func) if ahead else func))

    def _counted(self, func):
        """func, its thread's CPU time added to ahead_cpu_s."""
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.indirection.count(
                    ahead_cpu_s=time.thread_time() - started)
        return wrapper

    @property
    def round_trips(self):
        return self.indirection.round_trips

    def compute_side(self):
        """A block that runs as nova-compute would (no database)."""
        return _compute_side()

    def conductor_side(self):
        """A block that runs as another service would, such as the API."""
        return _conductor_side()


def _on_compute_side(func, ahead=False):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        before = getattr(_where, 'ahead', False)
        _where.ahead = before or ahead
        try:
            with _compute_side():
                return func(*args, **kwargs)
        finally:
            _where.ahead = before
    return wrapper
