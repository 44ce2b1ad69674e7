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

"""Compute API payloads shaped as nova 34.0.0 returns them to an admin.

Field names and timestamp formats follow nova's view builders and API
samples at microversion 2.84: ``GET /servers/detail`` (servers view
builder: ``updated`` is ``utils.isotime``, with a ``Z``), instance actions
and events (``jsonutils`` datetimes, ``2026-12-01T08:00:00.000000``, no
zone) and ``GET /os-services`` (2.53 ids are uuids, 2.11 adds
``forced_down``).
"""

import datetime

from oslo_utils.fixture import uuidsentinel as uuids

HOST = 'cmp1'
OTHER = 'cmp2'
PROJECT = '6f70656e737461636b20342065766572'
USER = 'fake'
NOW = datetime.datetime(2026, 12, 1, 9, 0, 0)


def isotime(at):
    """Like nova.utils.isotime: servers' ``created`` and ``updated``."""
    return at.strftime('%Y-%m-%dT%H:%M:%SZ')


def strtime(at):
    """Like oslo jsonutils: actions', events' and services' timestamps."""
    return at.strftime('%Y-%m-%dT%H:%M:%S.%f')


def ago(seconds):
    return NOW - datetime.timedelta(seconds=seconds)


def server(task_state, vm_state='active', host=HOST, updated=60,
           power_state=1, uuid=None, name='vm'):
    """One entry of GET /servers/detail; updated is seconds before NOW."""
    uuid = uuid or uuids.server
    status = {'active': 'ACTIVE', 'stopped': 'SHUTOFF',
              'building': 'BUILD', 'paused': 'PAUSED',
              'resized': 'VERIFY_RESIZE'}.get(vm_state, vm_state.upper())
    return {
        'accessIPv4': '',
        'accessIPv6': '',
        'addresses': {},
        'created': isotime(ago(86400)),
        'flavor': {'disk': 1, 'ephemeral': 0, 'extra_specs': {},
                   'original_name': 'm1.tiny', 'ram': 512, 'swap': 0,
                   'vcpus': 1},
        'hostId': 'c0ffee' if host else '',
        'id': uuid,
        'image': '',
        'key_name': None,
        'links': [],
        'metadata': {},
        'name': name,
        'config_drive': '',
        'locked': False,
        'locked_reason': None,
        'description': None,
        'tags': [],
        'trusted_image_certificates': None,
        'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': 'nova',
        'OS-EXT-SRV-ATTR:host': host,
        'OS-EXT-SRV-ATTR:hypervisor_hostname': host,
        'OS-EXT-SRV-ATTR:instance_name': 'instance-00000001',
        'OS-EXT-SRV-ATTR:hostname': name,
        'OS-EXT-SRV-ATTR:kernel_id': '',
        'OS-EXT-SRV-ATTR:launch_index': 0,
        'OS-EXT-SRV-ATTR:ramdisk_id': '',
        'OS-EXT-SRV-ATTR:reservation_id': 'r-abcdefgh',
        'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
        'OS-EXT-SRV-ATTR:user_data': None,
        'OS-EXT-STS:power_state': power_state,
        'OS-EXT-STS:task_state': task_state,
        'OS-EXT-STS:vm_state': vm_state,
        'os-extended-volumes:volumes_attached': [],
        'OS-SRV-USG:launched_at': strtime(ago(86000)),
        'OS-SRV-USG:terminated_at': None,
        'host_status': 'UP' if host else '',
        'security_groups': [{'name': 'default'}],
        'status': status,
        'tenant_id': PROJECT,
        'updated': isotime(ago(updated)),
        'user_id': USER,
    }


def action(name, start=60, request_id=None, uuid=None, events=None):
    """An instance action; with events, as GET .../{request_id} shows it.

    Without events it is an entry of the list, which has none.
    """
    body = {
        'action': name,
        'instance_uuid': uuid or uuids.server,
        'request_id': request_id or 'req-%s' % getattr(uuids, name),
        'user_id': USER,
        'project_id': PROJECT,
        'start_time': strtime(ago(start)),
        'updated_at': strtime(ago(start)),
        'message': None,
    }
    if events is not None:
        body['events'] = events
    return body


def event(method, start=55, finish=None, result=None, host=HOST,
          details=None):
    """An event of an action at 2.84; finish is seconds before NOW."""
    return {
        'event': 'compute_' + method,
        'start_time': strtime(ago(start)),
        'finish_time': strtime(ago(finish)) if finish is not None else None,
        'result': result,
        'traceback': None,
        'host': host,
        'hostId': 'c0ffee',
        'details': details,
    }


def service(host=HOST, state='up', updated=5, forced_down=False,
            binary='nova-compute', status='enabled'):
    """One entry of GET /os-services at 2.84."""
    return {
        'binary': binary,
        'disabled_reason': None,
        'forced_down': forced_down,
        'host': host,
        'id': getattr(uuids, 'service_%s_%s' % (host, binary)),
        'state': state,
        'status': status,
        'updated_at': strtime(ago(updated)),
        'zone': 'nova' if binary == 'nova-compute' else 'internal',
    }
