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

"""Delete the image a dead snapshot, backup or shelve left in glance.

Beyond the recover-stuck-state blueprint: no upstream change; stock nova
34.0.0 has no start-up handling for the images that an interrupted
IMAGE_* or SHELVING* operation leaves in glance.

States owned: none; the image_upload, snapshot and shelve rules call
this helper while they recover, and the sweep for a lost request's
image; shelve_offload, unshelve and powering use its service-user
context (image_context).

The API creates the image (status ``queued``) before it casts to the
compute, which fills it (``saving``) and glance marks it ``active`` once
the upload completes. An image that is still queued or saving when the
rule runs belongs to an upload that died with nova-compute: no process
will ever finish it, and it would sit in the user's image list forever.
The engine runs a rule only once the request has reached this host, so
the image cannot belong to a request still on its way.

Only images that nova itself created for this instance are touched
(properties ``instance_uuid`` and ``image_type`` snapshot or backup, as
compute_utils.create_image sets them; shelve uses ``snapshot``), only
images owned by the instance's project, and only unfinished ones: an
active image is user data and stays. The requests may act as an admin,
who sees every project's images, and any user can set an
``instance_uuid`` property on an image of their own: the owner check
keeps such an image of another project out of reach. A snapshot that an
admin of another project asked for is owned by that project and is
left for the operator too. Callers
run this before they clear the task state, while no new image request
can claim the instance. Glance being unreachable, or refusing the
start-up context, must not block recovery: failures are logged and the
image is left for the operator.

Start-up runs under an anonymous admin context, which carries no token
for glance to check. As nova-manage does for such a context, the
requests then authenticate as nova's service user (``[service_user]``),
which a deployment gives the admin role that deleting another project's
image takes; without it configured, glance's refusal is logged.
"""

from oslo_log import log as logging

import nova.conf
from nova import exception

from . import base
from . import releases

LOG = logging.getLogger(__name__)

UNFINISHED = frozenset(['queued', 'saving'])
IMAGE_TYPES = frozenset(['snapshot', 'backup'])


def _owner(image):
    # Glance v2 gives the owner as a field of its own; nova's glance
    # fixture (and a v1-shaped record) carries it among the properties,
    # where real glance does not let a user set it.
    owner = image.get('owner')
    if owner is None:
        owner = (image.get('properties') or {}).get('owner')
    return owner


def made_for(image, instance, image_types=IMAGE_TYPES):
    """Whether nova made the image for the instance, in its project.

    The properties are those compute_utils.create_image sets; the owner
    check keeps out an image of another project that carries them.
    """
    properties = image.get('properties') or {}
    project_id = base.field(instance, 'project_id')
    return (properties.get('instance_uuid') == instance.uuid and
            properties.get('image_type') in image_types and
            project_id is not None and _owner(image) == project_id)


def _is_leftover(image, instance):
    return image.get('status') in UNFINISHED and made_for(image, instance)


def image_context(context):
    """The context itself, or one acting as nova's service user.

    Only a context with neither a token nor an auth plugin is replaced.
    """
    if context.auth_token or context.user_auth_plugin is not None:
        return context
    try:
        auth = releases.service_auth_plugin(
            nova.conf.service_token.SERVICE_USER_GROUP)
    except Exception:
        LOG.warning('Could not load the [service_user] credentials for '
                    'glance', exc_info=True)
        auth = None
    if auth is None:
        return context
    acting = context.elevated()
    acting.user_auth_plugin = auth
    return acting


def delete_unfinished_images(manager, context, instance):
    """Delete the instance's snapshot/backup images that never finished.

    :returns: the ids of the deleted images.
    """
    context = image_context(context)
    try:
        images = manager.image_api.get_all(
            context, filters={'instance_uuid': instance.uuid})
    except Exception:
        LOG.warning('Could not list the images of the instance to clean '
                    'up an interrupted upload; leaving them',
                    exc_info=True, instance=instance)
        return []
    deleted = []
    # Glance filters by property, but a filter it ignores must not widen
    # what gets deleted: every image is checked here as well.
    for image in images:
        if not _is_leftover(image, instance):
            continue
        try:
            manager.image_api.delete(context, image['id'])
        except exception.ImageNotFound:
            pass
        except Exception:
            LOG.warning('Could not delete image %s left %s by an '
                        'interrupted upload', image['id'],
                        image.get('status'), exc_info=True,
                        instance=instance)
            continue
        LOG.info('Deleted image %(id)s, left %(status)s by an upload that '
                 'nova-compute did not finish',
                 {'id': image['id'], 'status': image.get('status')},
                 instance=instance)
        deleted.append(image['id'])
    return deleted
