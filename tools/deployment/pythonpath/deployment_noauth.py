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

"""Token-free authentication for the deployment's nova-api.

nova 34 dropped the noauth2 pipeline and [api]auth_strategy, so
the deployment's api-paste.ini puts this filter where authtoken would
be. It does what the removed middleware did: the token user:project
names the caller, and the users admin and nova have the admin role. The headers
it sets are those keystonemiddleware sets, so nova's own
keystonecontext builds the request context unchanged.
"""

import webob.dec
import webob.exc


class NoAuth(object):

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        token = req.headers.get('X-Auth-Token')
        if not token:
            return webob.exc.HTTPUnauthorized()
        user_id, _sep, project_id = token.partition(':')
        project_id = project_id or user_id
        # admin is the operator, nova the service user a real deployment
        # gives the admin role.
        roles = ('admin,member,reader' if user_id in ('admin', 'nova')
                 else 'member')
        req.headers['X_USER_ID'] = user_id
        req.headers['X_USER_NAME'] = user_id
        req.headers['X_PROJECT_ID'] = project_id
        req.headers['X_TENANT_ID'] = project_id
        req.headers['X_PROJECT_NAME'] = project_id
        req.headers['X_ROLES'] = roles
        req.headers['X_IDENTITY_STATUS'] = 'Confirmed'
        return self.application


def filter_factory(global_conf, **local_conf):
    return NoAuth
