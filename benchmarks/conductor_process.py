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

"""nova-conductor in a process of its own, for the benchmark.

In production, nova-compute waits for nova-conductor in another process:
while it waits, its other threads (the read-ahead's) have the
interpreter. An in-process conductor shares the interpreter and hides
that, so this module runs nova's real ConductorManager, with the
database, in a child process. Benchmark threads reach it over a Unix
socket, one connection each, served by a thread each, like a conductor
worker's pool. Messages are the JSON of NovaObjectSerializer primitives
that ConductorIndirection builds, as over RPC.

    python benchmarks/conductor_process.py SOCKET EVERY

is the child; Conductor starts it and is what the benchmark calls.
"""

import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', 'True')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import nova_recover.tests  # noqa: E402,F401  (eventlet, objects, paste)

from multiprocessing import connection  # noqa: E402

from nova import test  # noqa: E402

from nova_recover.tests import fixtures as recover_fixtures  # noqa: E402

AUTHKEY = b'nova-recover-bench'
# Replies: one byte for what follows, the JSON reply or a pickled error.
REPLY, ERROR = b'R', b'E'


class ConductorError(Exception):
    """An error of the conductor's process that did not pickle."""


class RemoteIndirection(recover_fixtures.ConductorIndirection):
    """ConductorIndirection whose conductor is a Conductor's process.

    Each call first waits ``latency_s``, as a network round trip does,
    beside the calls of other threads; then the conductor's process
    serves it, with its own CPU.
    """

    def __init__(self, conductor, latency_s):
        super().__init__()
        self.remote = conductor
        self.latency_s = latency_s

    def _serve(self, method, wire):
        if self.latency_s:
            time.sleep(self.latency_s)
        return self.remote.request(method, wire)


class Conductor(object):
    """Start, reach and stop the conductor's process."""

    def __init__(self, every):
        self._dir = tempfile.mkdtemp(prefix='nova-recover-bench-')
        self.address = os.path.join(self._dir, 'conductor')
        self._log = open(os.path.join(self._dir, 'conductor.log'), 'w+')
        env = dict(os.environ, OS_TEST_TIMEOUT='0')
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), self.address,
             str(every)], env=env, stdout=self._log,
            stderr=subprocess.STDOUT)
        self._local = threading.local()
        self._connections = []
        self._lock = threading.Lock()

    def _connection(self, timeout=120):
        conn = getattr(self._local, 'conn', None)
        if conn is not None:
            return conn
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = connection.Client(self.address, family='AF_UNIX',
                                         authkey=AUTHKEY)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if (self.process.poll() is not None or
                        time.monotonic() > deadline):
                    raise ConductorError(
                        'the conductor process did not start:\n' +
                        self.log_tail())
                time.sleep(0.1)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def request(self, method, payload=''):
        """Send a call (or a command) and wait for its reply."""
        conn = self._connection()
        conn.send_bytes(method.encode() + b'\n' + payload.encode())
        reply = conn.recv_bytes()
        if reply[:1] == ERROR:
            try:
                error = pickle.loads(reply[1:])
            except Exception as exc:
                error = ConductorError('an error that did not unpickle: %s'
                                       % exc)
            raise error
        return reply[1:].decode()

    def cpu_s(self):
        """CPU time the conductor's process has used so far (Linux)."""
        with open('/proc/%d/stat' % self.process.pid) as f:
            fields = f.read().rpartition(')')[2].split()
        # utime and stime, fields 14 and 15 of proc(5).
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            'SC_CLK_TCK')

    def log_tail(self, lines=40):
        self._log.flush()
        self._log.seek(0)
        return ''.join(self._log.readlines()[-lines:])

    def stop(self):
        try:
            self.request('stop')
        except Exception:
            pass
        for conn in self._connections:
            conn.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        for name in os.listdir(self._dir):
            os.unlink(os.path.join(self._dir, name))
        os.rmdir(self._dir)


class _Database(test.TestCase):
    """Only for nova's fixtures: database, default flavors, conf."""

    def runTest(self):
        pass


def _handle(conn, indirection, data, stopping):
    """Serve one connection: conductor calls, and the data's commands."""
    while not stopping.is_set():
        try:
            method, _, payload = conn.recv_bytes().partition(b'\n')
        except (EOFError, OSError):
            return
        method = method.decode()
        try:
            if method == 'populate':
                reply = str(data.populate(int(payload)))
            elif method == 'restore':
                data.restore()
                reply = ''
            elif method == 'stop':
                stopping.set()
                reply = ''
            else:
                reply = indirection._serve(method, payload.decode())
            conn.send_bytes(REPLY + reply.encode())
        except Exception as exc:
            try:
                error = pickle.dumps(exc)
            except Exception:
                error = pickle.dumps(ConductorError(repr(exc)))
            conn.send_bytes(ERROR + error)


def serve(address, every):
    """The child: nova's conductor and database, until told to stop."""
    import host_data
    case = _Database()
    case.setUp()
    data = host_data.HostData(every)
    indirection = recover_fixtures.ConductorIndirection()
    listener = connection.Listener(address, family='AF_UNIX',
                                   authkey=AUTHKEY)
    stopping = threading.Event()

    def accept():
        while True:
            conn = listener.accept()
            threading.Thread(target=_handle, daemon=True,
                             args=(conn, indirection, data,
                                   stopping)).start()

    threading.Thread(target=accept, daemon=True).start()
    parent = os.getppid()
    # Told to stop, or orphaned: a benchmark killed outright says nothing.
    while not stopping.wait(1) and os.getppid() == parent:
        pass
    listener.close()
    # Nothing to clean: the database lives in this process's memory.
    os._exit(0)


if __name__ == '__main__':
    serve(sys.argv[1], int(sys.argv[2]))
