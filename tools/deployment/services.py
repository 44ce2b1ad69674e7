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
"""Configure, start and stop every service of the real deployment.

Each service is its own OS process in its own session (so one killpg
ends it and its children), logs to <run>/logs/<name>.log and leaves its
pid in <run>/pids/<name>.pid, where tools/run-deployment.sh's trap finds
whatever is left if this process itself dies. Everything listens on
127.0.0.1 only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir,
                                   os.pardir))
PYTHONPATH = os.path.join(TOP, 'tools', 'deployment', 'pythonpath')
HOST = '127.0.0.1'
# Away from the services' well-known ports, so that a system service or a
# devstack on the same machine cannot be reached by mistake.
PORTS = {
    'mysql': 23306,
    'amqp': 25673,
    'amqp_dist': 25674,
    'epmd': 24369,
    'placement': 28778,
    'glance': 29292,
    'neutron': 29696,
    'nova': 28774,
}
DATABASES = ['nova_api', 'nova_cell0', 'nova', 'placement', 'glance',
             'neutron']
DB_USER = 'openstack'
DB_PASSWORD = 'deployment-only'
COMPUTES = {'compute-a': 'recover', 'compute-b': 'stock'}
# On libvirt each compute host has its own loopback address: nova tells
# a move's other host by its my_ip, and its libvirtd listens there for
# live migration (tools/libvirt/hosts.sh).
ADDRESSES = {'compute-a': '127.0.0.2', 'compute-b': '127.0.0.3'}
MIGRATION_PORTS = {'compute-a': '49152 49171', 'compute-b': '49172 49191'}
HYPERVISORS = ('fake', 'libvirt')
LIBVIRT_TOOLS = os.path.join(TOP, 'tools', 'libvirt')


class DeploymentError(Exception):
    pass


def ini(sections):
    """Render {section: {key: value}} as an ini file."""
    out = []
    for section, opts in sections.items():
        out.append('[%s]' % section)
        out.extend('%s = %s' % (k, v) for k, v in opts.items())
        out.append('')
    return '\n'.join(out)


def wait_for(what, predicate, timeout, interval=0.5, error=None):
    """predicate() until it returns something true; bounded in time.

    :param error: the exception class raised on timeout (DeploymentError
        by default).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise (error or DeploymentError)(
                'timed out after %ds waiting for %s' % (timeout, what))
        time.sleep(interval)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


class Deployment(object):

    def __init__(self, run_dir, venv, log=print, hypervisor='fake'):
        self.run = os.path.abspath(run_dir)
        self.venv = venv
        self.log = log
        if hypervisor not in HYPERVISORS:
            raise DeploymentError('no such hypervisor %s' % hypervisor)
        self.hypervisor = hypervisor
        # The private libvirt hosts (hosts.sh DIR), and the path every
        # host has its own instances directory at.
        self.hosts_dir = os.path.join(self.run, 'libvirt')
        self.instances = os.path.join(self.run, 'instances')
        self.virt_type = None
        self.etc = os.path.join(self.run, 'etc')
        self.logs = os.path.join(self.run, 'logs')
        self.pids = os.path.join(self.run, 'pids')
        self.procs = {}
        for d in (self.etc, self.logs, self.pids):
            os.makedirs(d, exist_ok=True)
        self.db_url = 'mysql+pymysql://%s:%s@%s:%d/%%s?charset=utf8' % (
            DB_USER, DB_PASSWORD, HOST, PORTS['mysql'])
        # Short, so that the Lost scenario sees the sweep within the run,
        # but longer than a request waits in the Queued scenario (from the
        # SIGKILL until the restarted compute-a has gone through 40
        # servers): past it, a queued request counts as lost.
        self.queued_request_grace = 150
        self.sweep_interval = 10
        self.transport_url = 'rabbit://guest:guest@%s:%d/' % (
            HOST, PORTS['amqp'])

    # Processes.

    def bin(self, name):
        return os.path.join(self.venv, 'bin', name)

    def env(self, extra=None):
        env = dict(os.environ)
        for var in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME',
                    'OS_NOVA_DISABLE_EVENTLET_PATCHING'):
            env.pop(var, None)
        env['PATH'] = os.path.join(self.venv, 'bin') + ':' + env['PATH']
        env['PYTHONPATH'] = PYTHONPATH
        env['PYTHONDONTWRITEBYTECODE'] = '1'
        env.update(extra or {})
        return env

    def start(self, name, argv, env=None):
        if name in self.procs and self.procs[name].poll() is None:
            raise DeploymentError('%s is already running' % name)
        logf = open(os.path.join(self.logs, name + '.log'), 'ab')
        logf.write(('--- start %s: %s\n' % (time.strftime('%H:%M:%S'),
                                            ' '.join(argv))).encode())
        logf.flush()
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=self.env(env),
                                cwd=self.run, start_new_session=True)
        logf.close()
        self.procs[name] = proc
        with open(os.path.join(self.pids, name + '.pid'), 'w') as f:
            f.write('%d\n' % proc.pid)
        return proc

    def signal(self, name, sig):
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, name, timeout=15):
        proc = self.procs.get(name)
        if proc is None:
            return
        self.signal(name, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # The group, not just the leader: gunicorn workers, beam, ...
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.procs.pop(name, None)
        try:
            os.unlink(os.path.join(self.pids, name + '.pid'))
        except FileNotFoundError:
            pass

    def kill(self, name):
        """SIGKILL, as a host crash would, and reap."""
        proc = self.procs.get(name)
        if proc is None:
            return
        self.signal(name, signal.SIGKILL)
        proc.wait(30)
        self.procs.pop(name, None)

    def alive(self, name):
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def check_alive(self, name):
        if not self.alive(name):
            raise DeploymentError('%s exited; see %s' % (
                name, os.path.join(self.logs, name + '.log')))

    def run_cmd(self, name, argv, timeout=300, env=None):
        """A one-shot command (db sync, ...) with its output in the logs."""
        with open(os.path.join(self.logs, name + '.log'), 'ab') as logf:
            logf.write(('--- %s\n' % ' '.join(argv)).encode())
            logf.flush()
            rc = subprocess.call(argv, stdout=logf, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=self.env(env),
                                 cwd=self.run, timeout=timeout)
        if rc:
            raise DeploymentError('%s failed (%d); see %s' % (
                ' '.join(argv[:3]), rc,
                os.path.join(self.logs, name + '.log')))

    def stop_all(self):
        # Computes first, the broker and database last, so nothing logs a
        # storm of connection errors on the way down.
        order = sorted(self.procs, key=lambda n: (
            n in ('rabbitmq', 'epmd', 'mariadb'),
            n == 'epmd', n == 'mariadb'))
        front = [n for n in order
                 if n not in ('rabbitmq', 'epmd', 'mariadb')]
        for name in front:
            self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name in front:
            proc = self.procs[name]
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        try:
            for name in order:
                self.stop(name)
        finally:
            if self.hypervisor == 'libvirt':
                self.stop_libvirt()

    def tail(self, names=None, lines=40):
        out = []
        names = names or sorted(f[:-4] for f in os.listdir(self.logs)
                                if f.endswith('.log'))
        for name in names:
            path = os.path.join(self.logs, name + '.log')
            if not os.path.exists(path):
                continue
            with open(path, 'rb') as f:
                text = f.read().decode('utf-8', 'replace').splitlines()
            out.append('==== %s (last %d lines) ====' % (path, lines))
            out.extend(text[-lines:])
        return '\n'.join(out)

    # MariaDB.

    def start_mariadb(self):
        data = os.path.join(self.run, 'mysql', 'data')
        self.mysql_socket = os.path.join(self.run, 'mysql', 'mysqld.sock')
        if not os.path.isdir(os.path.join(data, 'mysql')):
            os.makedirs(data, exist_ok=True)
            self.run_cmd('mariadb-install', [
                'mariadb-install-db', '--no-defaults', '--datadir=' + data,
                '--user=root', '--auth-root-authentication-method=socket',
                '--skip-test-db'], timeout=120)
        self.start('mariadb', [
            'mariadbd', '--no-defaults', '--datadir=' + data,
            '--socket=' + self.mysql_socket, '--port=%d' % PORTS['mysql'],
            '--bind-address=' + HOST, '--user=root', '--skip-name-resolve',
            '--pid-file=' + os.path.join(self.run, 'mysql', 'mysqld.pid'),
            '--log-error=' + os.path.join(self.logs, 'mariadb-error.log'),
            '--skip-log-bin', '--max-connections=1000',
            '--innodb-buffer-pool-size=256M', '--innodb-log-file-size=32M',
            # Crash safety of the database is not under test; its speed is.
            '--innodb-flush-log-at-trx-commit=0', '--sync-binlog=0',
            '--innodb-doublewrite=0',
            '--character-set-server=utf8mb4'])

    def wait_mariadb(self):
        def up():
            self.check_alive('mariadb')
            return (os.path.exists(self.mysql_socket) and
                    port_open(PORTS['mysql']))
        wait_for('MariaDB', up, 60)
        sql = ['CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4'
               % db for db in DATABASES]
        sql += ["CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'"
                % (DB_USER, HOST, DB_PASSWORD),
                "GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s'" % (DB_USER, HOST),
                'FLUSH PRIVILEGES']
        self.run_cmd('mariadb-setup', [
            'mariadb', '--no-defaults', '--socket=' + self.mysql_socket,
            '-uroot', '-e', ';\n'.join(sql)], timeout=60)

    # RabbitMQ, with its own epmd so that no epmd daemon outlives the run.

    def rabbit_env(self):
        base = os.path.join(self.run, 'rabbitmq')
        return {
            'HOME': base,
            'RABBITMQ_NODENAME': 'nova-recover@localhost',
            'RABBITMQ_NODE_IP_ADDRESS': HOST,
            'RABBITMQ_NODE_PORT': str(PORTS['amqp']),
            'RABBITMQ_DIST_PORT': str(PORTS['amqp_dist']),
            'RABBITMQ_MNESIA_BASE': os.path.join(base, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(self.logs, 'rabbitmq'),
            'RABBITMQ_CONFIG_FILE': os.path.join(base, 'rabbitmq'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(
                base, 'advanced.config'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(
                base, 'enabled_plugins'),
            'RABBITMQ_CONF_ENV_FILE': os.path.join(base, 'rabbitmq-env.conf'),
            'RABBITMQ_PID_FILE': os.path.join(base, 'rabbitmq.pid'),
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
            'ERL_EPMD_ADDRESS': HOST,
            'ERL_EPMD_PORT': str(PORTS['epmd']),
        }

    def start_rabbitmq(self):
        base = os.path.join(self.run, 'rabbitmq')
        os.makedirs(os.path.join(self.logs, 'rabbitmq'), exist_ok=True)
        if not os.path.isdir(base):
            os.makedirs(base)
            files = {
                'rabbitmq.conf': (
                    'listeners.tcp.default = %s:%d\n'
                    'loopback_users.guest = true\n'
                    'log.console = false\n'
                    'log.file.level = info\n' % (HOST, PORTS['amqp'])),
                'advanced.config': '[].\n',
                'enabled_plugins': '[].\n',
                'rabbitmq-env.conf': '',
            }
            for fname, text in files.items():
                with open(os.path.join(base, fname), 'w') as f:
                    f.write(text)
        if not self.alive('epmd'):
            self.start('epmd', ['epmd', '-address', HOST, '-port',
                                str(PORTS['epmd'])])
            wait_for('epmd', lambda: port_open(PORTS['epmd']), 20)
        self.start('rabbitmq', ['/usr/lib/rabbitmq/bin/rabbitmq-server'],
                   env=self.rabbit_env())

    def wait_rabbitmq(self):
        wait_for('RabbitMQ', lambda: (self.check_alive('rabbitmq') or
                                      port_open(PORTS['amqp'])), 90)

    def restart_rabbitmq(self):
        """Restart the broker: every cast and non-durable queue is lost.

        oslo.messaging's default is amqp_durable_queues=False.
        """
        self.stop('rabbitmq')
        wait_for('RabbitMQ to stop', lambda: not port_open(PORTS['amqp']),
                 30)
        self.start_rabbitmq()
        self.wait_rabbitmq()

    # libvirt: one private host (libvirtd in a mount namespace) per compute.

    def hosts_cmd(self, *args, timeout=120):
        subprocess.run([os.path.join(LIBVIRT_TOOLS, 'hosts.sh')] +
                       list(args), check=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)

    def start_libvirt(self):
        """Each compute's libvirtd; returns the virt_type the guests get.

        kvm when QEMU may open /dev/kvm and the QEMU driver offers it,
        qemu (TCG) otherwise; NOVA_RECOVER_VIRT_TYPE chooses.
        """
        os.makedirs(self.hosts_dir, exist_ok=True)
        os.makedirs(self.instances, exist_ok=True)
        with open(os.path.join(self.hosts_dir, 'addresses'), 'w') as f:
            for host, address in ADDRESSES.items():
                f.write('%s %s\n' % (address, host))
        for host in COMPUTES:
            env = dict(os.environ, HOSTS_ADDR=ADDRESSES[host],
                       HOSTS_MIGRATION_PORTS=MIGRATION_PORTS[host],
                       HOSTS_MOUNTS='instances:%s' % self.instances)
            subprocess.run([os.path.join(LIBVIRT_TOOLS, 'hosts.sh'),
                            'start', self.hosts_dir, host], check=True,
                           timeout=120, env=env, stdin=subprocess.DEVNULL)
        virt_type = os.environ.get('NOVA_RECOVER_VIRT_TYPE')
        if not virt_type:
            virt_type = 'qemu'
            try:
                os.close(os.open('/dev/kvm', os.O_RDWR))
                caps = subprocess.run(
                    [os.path.join(LIBVIRT_TOOLS, 'hosts.sh'), 'exec',
                     self.hosts_dir, 'compute-a', '--', 'virsh', '-c',
                     'qemu:///system', 'domcapabilities', '--virttype',
                     'kvm'], capture_output=True, text=True, timeout=60)
                if caps.returncode == 0:
                    virt_type = 'kvm'
            except OSError:
                pass
        self.virt_type = virt_type
        return virt_type

    def stop_libvirt(self):
        """Destroy every guest and stop every libvirtd of the run."""
        for host in COMPUTES:
            try:
                self.hosts_cmd('stop', self.hosts_dir, host)
            except (subprocess.SubprocessError, OSError) as e:
                self.log('libvirt host %s: stop failed: %s' % (host, e))

    def virsh(self, host, *args, timeout=60):
        """virsh on host's own libvirtd; (returncode, stdout)."""
        proc = subprocess.run(
            [os.path.join(LIBVIRT_TOOLS, 'hosts.sh'), 'exec',
             self.hosts_dir, host, '--', 'virsh', '-q', '-c',
             'qemu:///system'] + list(args), capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout

    def in_host(self, host, *argv, timeout=60):
        """A command in host's mount namespace; its stdout."""
        return subprocess.run(
            [os.path.join(LIBVIRT_TOOLS, 'hosts.sh'), 'exec',
             self.hosts_dir, host, '--'] + list(argv), capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL).stdout

    # Configuration.

    def write(self, rel, text):
        path = os.path.join(self.etc, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def lock_path(self, service):
        path = os.path.join(self.run, 'lock', service)
        os.makedirs(path, exist_ok=True)
        return path

    def configure(self):
        venv_etc = os.path.join(self.venv, 'etc')
        self.write('placement/placement.conf', ini({
            'DEFAULT': {'debug': 'False'},
            'api': {'auth_strategy': 'noauth2'},
            'placement_database': {'connection': self.db_url % 'placement'},
        }))

        glance_dir = os.path.join(self.run, 'glance')
        self.write('glance/glance-api.conf', ini({
            'DEFAULT': {
                'debug': 'False',
                'enabled_backends': 'file:file',
                'workers': '1',
                'transport_url': self.transport_url,
            },
            'database': {'connection': self.db_url % 'glance'},
            'paste_deploy': {'flavor': 'keystone'},
            'glance_store': {'default_backend': 'file'},
            'file': {'filesystem_store_datadir':
                     os.path.join(glance_dir, 'images')},
            'os_glance_staging_store': {'filesystem_store_datadir':
                                        os.path.join(glance_dir, 'staging')},
            'os_glance_tasks_store': {'filesystem_store_datadir':
                                      os.path.join(glance_dir, 'tasks')},
            'oslo_concurrency': {'lock_path': self.lock_path('glance')},
            'oslo_messaging_notifications': {'driver': 'noop'},
        }))
        # glance's own noauth pipeline (unauthenticated-context) is denied
        # by its policy defaults; the keystone pipeline with the
        # deployment's token-free filter in place of authtoken is not.
        with open(os.path.join(venv_etc, 'glance',
                               'glance-api-paste.ini')) as f:
            paste = f.read()
        section = '[filter:authtoken]\n'
        start = paste.index(section) + len(section)
        end = paste.index('\n\n', start)
        paste = (paste[:start] +
                 'paste.filter_factory = deployment_noauth:filter_factory' +
                 paste[end:])
        self.write('glance/glance-api-paste.ini', paste)

        self.write('neutron/neutron.conf', ini({
            'DEFAULT': {
                'debug': 'False',
                'core_plugin': 'ml2',
                # Not empty: without the L3 plugin neutron 29 never imports
                # the model that port GET expects (Port.port_forwardings).
                'service_plugins': 'router',
                'auth_strategy': 'noauth',
                'api_workers': '0',
                'rpc_workers': '0',
                'transport_url': self.transport_url,
                'notify_nova_on_port_status_changes': 'False',
                'notify_nova_on_port_data_changes': 'False',
                'api_paste_config': os.path.join(self.etc, 'neutron',
                                                 'api-paste.ini'),
            },
            'database': {'connection': self.db_url % 'neutron'},
            'oslo_concurrency': {'lock_path': self.lock_path('neutron')},
            'oslo_messaging_notifications': {'driver': 'noop'},
        }))
        self.write('neutron/plugins/ml2/ml2_conf.ini', ini({
            'ml2': {'type_drivers': 'flat', 'tenant_network_types': '',
                    'mechanism_drivers': '', 'extension_drivers': ''},
            'ml2_type_flat': {'flat_networks': '*'},
        }))
        shutil.copy(os.path.join(venv_etc, 'neutron', 'api-paste.ini'),
                    os.path.join(self.etc, 'neutron'))

        with open(os.path.join(venv_etc, 'nova', 'api-paste.ini')) as f:
            paste = f.read()
        if ' authtoken keystonecontext ' not in paste:
            raise DeploymentError('nova api-paste.ini has no authtoken')
        paste = paste.replace(' authtoken keystonecontext ',
                              ' noauth keystonecontext ')
        paste += ('\n[filter:noauth]\n'
                  'paste.filter_factory = deployment_noauth:filter_factory\n')
        self.write('nova/api-paste.ini', paste)

        # What every nova service shares; nova-compute gets no database.
        common = {
            'DEFAULT': {
                'debug': 'False',
                'transport_url': self.transport_url,
                'my_ip': HOST,
                'host': 'controller',
                'state_path': os.path.join(self.run, 'nova'),
                'compute_driver': 'persistent_fake.PersistentFakeDriver',
                'osapi_compute_workers': '1',
                'metadata_workers': '1',
                # shelve leaves SHELVED; shelve-offload is its own request.
                'shelved_offload_time': '-1',
            },
            'oslo_concurrency': {'lock_path': self.lock_path('nova')},
            'oslo_messaging_notifications': {'driver': 'noop'},
            'placement': {
                'auth_type': 'admin_token',
                'endpoint': 'http://%s:%d' % (HOST, PORTS['placement']),
                'token': 'admin:admin',
                'endpoint_override': 'http://%s:%d' % (
                    HOST, PORTS['placement']),
            },
            'glance': {
                'endpoint_override': 'http://%s:%d' % (HOST, PORTS['glance']),
                'num_retries': '0',
            },
            # nova's service user, which start-up uses for glance when it
            # has no user's token (deployment_noauth gives it admin).
            'service_user': {
                'auth_type': 'admin_token',
                'endpoint': 'http://%s:%d' % (HOST, PORTS['glance']),
                'token': 'nova:service',
            },
            'neutron': {
                'auth_type': 'admin_token',
                'endpoint': 'http://%s:%d' % (HOST, PORTS['neutron']),
                'token': 'admin:admin',
                'endpoint_override': 'http://%s:%d' % (HOST,
                                                       PORTS['neutron']),
            },
            'scheduler': {'workers': '1',
                          'discover_hosts_in_cells_interval': '-1'},
            'conductor': {'workers': '1'},
            'wsgi': {'api_paste_config': os.path.join(self.etc, 'nova',
                                                      'api-paste.ini')},
            'api': {'max_limit': '1000'},
            # Setting quotas through the API would need keystone.
            'quota': {'instances': '-1', 'cores': '-1', 'ram': '-1'},
            'cinder': {'os_region_name': 'RegionOne'},
            'vnc': {'enabled': 'False'},
            'recover': {
                'queued_request_grace': str(self.queued_request_grace),
                'sweep_interval': str(self.sweep_interval)},
        }
        compute = dict(common)
        if self.hypervisor == 'libvirt':
            compute = self.libvirt_conf(common)
        controller = dict(common)
        controller['database'] = {'connection': self.db_url % 'nova'}
        controller['api_database'] = {'connection': self.db_url % 'nova_api'}
        self.write('nova/nova.conf', ini(controller))
        self.write('nova/nova-compute.conf', ini(compute))
        for host in COMPUTES:
            state = os.path.join(self.run, host)
            os.makedirs(state, exist_ok=True)
            own = {'DEFAULT': {
                'host': host, 'state_path': state,
                'instances_path': os.path.join(state, 'instances')}}
            if self.hypervisor == 'libvirt':
                own = self.libvirt_host_conf(host, state)
            self.write('nova/%s.conf' % host, ini(own))

    def libvirt_conf(self, common):
        """nova-compute.conf on libvirt, from what every service shares."""
        compute = {k: dict(v) for k, v in common.items()}
        compute['DEFAULT'].update({
            'compute_driver': 'crashpoint_libvirt.CrashPointLibvirtDriver',
            # The tiny guest ignores ACPI: a clean shutdown waits this
            # long, then destroys the guest, as for any unresponsive one.
            'shutdown_timeout': '3',
            # Some 70 one-vCPU guests per host over a run, idle in hlt,
            # on a machine of 2 CPUs, each with a flavor disk of 1 GiB
            # that holds a few MiB.
            'cpu_allocation_ratio': '64.0',
            'disk_allocation_ratio': '16.0',
        })
        compute['libvirt'] = {
            'virt_type': self.virt_type,
            # QEMU's default CPU model: on KVM in a virtual machine the
            # host CPU model asks for MSRs the outer hypervisor refuses,
            # and the same model on both hosts lets guests migrate.
            'cpu_mode': 'none',
            # A soft reboot the guest ignores turns hard after this long.
            'wait_soft_reboot_seconds': '3',
            'live_migration_scheme': 'tcp',
        }
        # Both hosts are this one machine, and their guests have QEMU's
        # default CPU model: libvirt's comparison of that model with the
        # host CPU (which nova makes before a live migration) fails in a
        # virtual machine whatever the model.
        compute['workarounds'] = {'skip_cpu_compare_on_dest': 'True'}
        return compute

    def libvirt_host_conf(self, host, state):
        """One libvirt compute's own settings.

        Its instances directory is the same path on both hosts, as nova
        expects, but each host's own (hosts.sh mounts it privately).
        """
        conf_files = ' '.join('--config-file %s' % os.path.join(
            self.etc, 'nova', name) for name in (
                'nova-compute.conf', '%s.conf' % host))
        helper = '%s %s' % (self.bin('privsep-helper'), conf_files)
        return {
            'DEFAULT': {'host': host, 'state_path': state,
                        'instances_path': self.instances,
                        'my_ip': ADDRESSES[host]},
            'libvirt': {'live_migration_inbound_addr': ADDRESSES[host]},
            # nova-compute runs as root here: no sudo, no rootwrap.
            'nova_sys_admin': {'helper_command': helper},
            'privsep_osbrick': {'helper_command': helper},
        }

    # Services.

    def nova_manage(self, *args, timeout=300):
        self.run_cmd('nova-manage', [
            self.bin('nova-manage'), '--config-file',
            os.path.join(self.etc, 'nova', 'nova.conf')] + list(args),
            timeout=timeout)

    def sync_databases(self):
        """Every service's schema, in parallel; cells v2 as installs do."""
        etc = self.etc
        jobs = {
            'placement-manage': [self.bin('placement-manage'),
                                 '--config-file',
                                 os.path.join(etc, 'placement',
                                              'placement.conf'),
                                 'db', 'sync'],
            'glance-manage': [self.bin('glance-manage'), '--config-file',
                              os.path.join(etc, 'glance', 'glance-api.conf'),
                              'db_sync'],
            'neutron-db-manage': [self.bin('neutron-db-manage'),
                                  '--config-file',
                                  os.path.join(etc, 'neutron',
                                               'neutron.conf'),
                                  '--config-file',
                                  os.path.join(etc, 'neutron', 'plugins',
                                               'ml2', 'ml2_conf.ini'),
                                  'upgrade', 'heads'],
        }
        procs = {}
        for name, argv in jobs.items():
            logf = open(os.path.join(self.logs, name + '.log'), 'ab')
            procs[name] = (subprocess.Popen(
                argv, stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env(), cwd=self.run,
                start_new_session=True), logf)
        try:
            self.nova_manage('api_db', 'sync')
            self.nova_manage('cell_v2', 'map_cell0')
            self.nova_manage('cell_v2', 'create_cell', '--name', 'cell1')
            self.nova_manage('db', 'sync')
            for name, (proc, logf) in procs.items():
                rc = proc.wait(300)
                logf.close()
                if rc:
                    raise DeploymentError('%s failed (%d); see %s' % (
                        name, rc, os.path.join(self.logs, name + '.log')))
        finally:
            for proc, logf in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def wsgi(self, name, port, target, env):
        self.start(name, [self.bin('python'), os.path.join(
            TOP, 'tools', 'deployment', 'wsgi_server.py'), name, str(port),
            target], env=env)

    def start_apis(self):
        self.wsgi('placement-api', PORTS['placement'], 'placement.wsgi.api:'
                  'application', {'OS_PLACEMENT_CONFIG_DIR':
                                  os.path.join(self.etc, 'placement')})
        self.wsgi('glance-api', PORTS['glance'], 'glance.wsgi.api:application',
                  {'OS_GLANCE_CONFIG_DIR': os.path.join(self.etc, 'glance')})
        self.wsgi('neutron-api', PORTS['neutron'],
                  'neutron.wsgi.api:application',
                  {'OS_NEUTRON_CONFIG_DIR': os.path.join(self.etc, 'neutron')})
        self.wsgi('nova-api', PORTS['nova'], 'nova.wsgi.osapi_compute:'
                  'application', {
                      'OS_NOVA_CONFIG_DIR': os.path.join(self.etc, 'nova')})
        nova_conf = os.path.join(self.etc, 'nova', 'nova.conf')
        for svc in ('nova-conductor', 'nova-scheduler'):
            self.start(svc, [self.bin(svc), '--config-file', nova_conf])

    def wait_apis(self):
        import urllib.request

        def up(name, port, path='/'):
            self.check_alive(name)
            try:
                urllib.request.urlopen('http://%s:%d%s' % (HOST, port, path),
                                       timeout=5).close()
                return True
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
        for name in ('placement', 'glance', 'neutron', 'nova'):
            wait_for(name + '-api', lambda: up(name + '-api', PORTS[name]),
                     120)

    def compute_argv(self, host, extra_conf=()):
        mode = COMPUTES[host]
        binary = {'recover': 'nova-compute-recover',
                  'stock': 'nova-compute'}[mode]
        argv = [self.bin(binary), '--config-file',
                os.path.join(self.etc, 'nova', 'nova-compute.conf'),
                '--config-file', os.path.join(self.etc, 'nova',
                                              '%s.conf' % host)]
        for path in extra_conf:
            argv += ['--config-file', path]
        return argv

    def start_compute(self, host, extra_conf=()):
        """Start a compute; extra_conf: config files for this start only.

        A libvirt compute runs in its host's mount namespace, with the
        ssh and scp through which nova reaches the other host's files.
        """
        argv = self.compute_argv(host, extra_conf)
        env = None
        if self.hypervisor == 'libvirt':
            argv = [os.path.join(LIBVIRT_TOOLS, 'hosts.sh'), 'exec',
                    self.hosts_dir, host, '--'] + argv
            env = {'PATH': '%s:%s:%s' % (
                os.path.join(LIBVIRT_TOOLS, 'remote'),
                os.path.join(self.venv, 'bin'), os.environ['PATH']),
                'NOVA_RECOVER_LIBVIRT_HOSTS': self.hosts_dir}
        self.start(host, argv, env=env)

    def compute_override(self, host, name, sections):
        """A config file that one start of host's compute adds to its own.

        Written to etc/nova/<host>-<name>.conf and returned.
        """
        return self.write('nova/%s-%s.conf' % (host, name), ini(sections))

    def crash_file(self, host):
        return os.path.join(self.run, host, 'crash.json')

    def parked_file(self, host):
        return os.path.join(self.run, host, 'parked.log')

    def discover_hosts(self):
        self.nova_manage('cell_v2', 'discover_hosts', '--verbose')


def main_stop(run_dir):
    """Kill every process group left in <run>/pids (the shell trap).

    Then stop the libvirt hosts of the run, with their guests.
    """
    hosts = os.path.join(run_dir, 'libvirt')
    pids = os.path.join(run_dir, 'pids')
    try:
        _kill_pids(pids)
    finally:
        for host in COMPUTES:
            if os.path.exists(os.path.join(hosts, host, 'holder.pid')):
                subprocess.call([os.path.join(LIBVIRT_TOOLS, 'hosts.sh'),
                                 'stop', hosts, host])
                print('stopped libvirt host %s' % host)


def _kill_pids(pids):
    if not os.path.isdir(pids):
        return
    for fname in os.listdir(pids):
        try:
            with open(os.path.join(pids, fname)) as f:
                pid = int(f.read().strip())
            os.killpg(pid, signal.SIGKILL)
            print('killed leftover %s (%d)' % (fname[:-4], pid))
        except (ValueError, ProcessLookupError, PermissionError):
            pass
        os.unlink(os.path.join(pids, fname))


if __name__ == '__main__':
    main_stop(sys.argv[1])
