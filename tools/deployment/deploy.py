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
"""Bring the real deployment up, run the scenarios, always tear it down.

    deploy.py RUN_DIR VENV [--hypervisor fake|libvirt]
              [--scenarios smoke,died,queued,lost,outage]

Run by tools/run-deployment.sh, which also installs the packages and the
venv. Exit status 0 only if every scenario passed with nova-recover.
"""

import argparse
import os
import signal
import sys
import threading
import time

import scenarios
import services

ALL = ['smoke', 'died', 'queued', 'lost', 'recovery', 'outage']
# The driver calls a start-up recovery makes, where the Died-during-
# recovery scenario kills it again.
RECOVERY_CALLS = ['power_off', 'power_on', 'reboot', 'destroy', 'spawn',
                  'unpause']
RECOVERY_OPS = ['snapshot', 'reboot-hard', 'stop', 'start', 'shelve-offload',
                'delete']


class Log(object):
    def __init__(self, path):
        self.f = open(path, 'a')
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, msg=''):
        line = '[%6.1fs] %s' % (time.monotonic() - self.t0, msg)
        with self.lock:
            print(line, flush=True)
            self.f.write(line + '\n')
            self.f.flush()


def bring_up(dep, log):
    dep.start_mariadb()
    dep.start_rabbitmq()
    if dep.hypervisor == 'libvirt':
        t = time.monotonic()
        virt_type = dep.start_libvirt()
        log('libvirt: a libvirtd per compute host, each in its own mount '
            'namespace, up in %.1fs; guests run on %s' % (
                time.monotonic() - t,
                'KVM (virt_type=kvm)' if virt_type == 'kvm' else
                'TCG (virt_type=qemu)'))
    dep.configure()
    dep.wait_mariadb()
    log('mariadb up on %s:%d' % (services.HOST, services.PORTS['mysql']))
    dep.wait_rabbitmq()
    log('rabbitmq up on %s:%d' % (services.HOST, services.PORTS['amqp']))
    dep.sync_databases()
    log('schemas synced, cells v2 mapped')
    dep.start_apis()
    dep.wait_apis()
    log('placement-api, glance-api, neutron-api, nova-api, conductor, '
        'scheduler up')
    for host in services.COMPUTES:
        dep.start_compute(host)


def wait_computes(dep, cloud, log):
    for host in services.COMPUTES:
        scenarios.poll('%s registered' % host, lambda: (
            dep.check_alive(host) or cloud.services(host)), 120)
    dep.discover_hosts()
    for host, mode in services.COMPUTES.items():
        log('%s up (%s)' % (host, ' '.join(os.path.basename(a) for a in
                                           dep.compute_argv(host)[:1])))


def smoke(dep, cloud, log):
    ids = {h: cloud.boot('smoke-%s' % h, h) for h in scenarios.HOSTS}
    cloud.wait_status(list(ids.values()), 'ACTIVE', 180)
    for host, sid in ids.items():
        on_host = [s['id'] for s in cloud.servers(host)]
        if sid not in on_host:
            raise scenarios.CheckError('%s not listed on %s' % (sid, host))
    for sid in ids.values():
        cloud.delete(sid)
    cloud.wait_status(list(ids.values()), 'DELETED', 120)
    log('smoke: booted with networks none on each compute, listed by '
        '--host, deleted')
    return []


def hold(log):
    """Development: keep the deployment up for an hour at most."""
    log('holding; SIGTERM %d to stop' % os.getpid())
    time.sleep(3600)
    return {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('run_dir')
    parser.add_argument('venv')
    parser.add_argument('--hypervisor', default='fake',
                        choices=services.HYPERVISORS)
    parser.add_argument('--scenarios', default=','.join(ALL))
    parser.add_argument('--ops', default='',
                        help='only these operations (comma separated)')
    args = parser.parse_args()
    wanted = [s for s in args.scenarios.split(',') if s]

    def terminate(signum, frame):
        raise SystemExit('deploy.py: signal %d' % signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, terminate)

    log = Log(os.path.join(args.run_dir, 'run.log'))
    dep = services.Deployment(args.run_dir, args.venv, log=log,
                              hypervisor=args.hypervisor)
    failures = {}
    rc = 1
    try:
        bring_up(dep, log)
        all_ops = scenarios.OPS
        died_only = set()
        if dep.hypervisor == 'libvirt':
            import libvirt_ops
            all_ops = libvirt_ops.OPS
            died_only = libvirt_ops.DIED_ONLY
        ops = [op for op in all_ops
               if not args.ops or op.name in args.ops.split(',')]
        waiting_ops = [op for op in ops if op.name not in died_only]
        cloud = scenarios.Cloud()
        wait_computes(dep, cloud, log)
        if 'hold' not in wanted:
            cloud.prepare(scenarios.guest_image(dep))
        steps = []
        if 'smoke' in wanted:
            steps.append(('smoke', lambda: {'smoke': smoke(dep, cloud, log)}))
        if 'died' in wanted or 'queued' in wanted:
            steps.append(('died+queued', lambda: scenarios.crash_cycle(
                dep, cloud, log, ops if 'died' in wanted else [],
                waiting_ops if 'queued' in wanted else [])))
        if 'recovery' in wanted or 'lost' in wanted:
            # Lost waits out the grace period; the recovery cycle runs in
            # that time.
            steps.append(('recovery+lost', lambda: scenarios.crash_cycle(
                dep, cloud, log,
                [op for op in all_ops if op.name in RECOVERY_OPS]
                if 'recovery' in wanted else [],
                kill_in_recovery=RECOVERY_CALLS,
                lost_ops=waiting_ops if 'lost' in wanted else [])))
        if 'outage' in wanted and dep.hypervisor != 'libvirt':
            steps.append(('outage', lambda: scenarios.outage_cycle(
                dep, cloud, log)))
        if 'hold' in wanted:
            steps.append(('hold', lambda: hold(log)))
        for step, fn in steps:
            t = time.monotonic()
            for name, failed in fn().items():
                if name in failures:
                    name = step + ':' + name
                failures[name] = failed
                log('%s: %s' % (name, 'PASS' if not failed else 'FAIL'))
                for f in failed:
                    log('  - ' + f)
            log('%s took %.0fs' % (step, time.monotonic() - t))
        rc = 0 if not any(failures.values()) else 1
    except BaseException as e:
        log('ERROR: %s: %s' % (type(e).__name__, e))
        import traceback
        traceback.print_exc()
        log(dep.tail(lines=30))
        rc = 1
    finally:
        dep.stop_all()
        log('all services stopped')
        log('summary: %s' % ', '.join(
            '%s %s' % (n, 'PASS' if not f else 'FAIL')
            for n, f in failures.items()))
    return rc


if __name__ == '__main__':
    sys.exit(main())
