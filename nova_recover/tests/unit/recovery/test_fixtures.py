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

"""The fixture that runs start-up recovery as nova-compute runs it."""

import sys
import threading

from oslo_utils import uuidutils

from nova import context as nova_context
from nova.db.main import api as db_api
from nova import exception
from nova import objects
from nova import test

from nova_recover.tests import fixtures as sr_fixtures


def _read_in_own_thread(context, uuid, found):
    """A stand-in for a function start-up runs in a thread of its own."""
    try:
        db_api.instance_get_by_uuid(context, uuid)
    except exception.DBNotAllowed as exc:
        found.append(exc)


class ProductionShapeTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.context = nova_context.get_admin_context()
        self.instance = objects.Instance(
            self.context, uuid=uuidutils.generate_uuid(), host='host1',
            project_id='p', user_id='u')
        self.instance.create()

    def test_direct_database_access_is_refused(self):
        shape = self.useFixture(sr_fixtures.ProductionShape())
        with shape.compute_side():
            self.assertRaises(exception.DBNotAllowed,
                              db_api.instance_get_by_uuid, self.context,
                              self.instance.uuid)
            # The same read through nova-conductor works.
            objects.Instance.get_by_uuid(self.context, self.instance.uuid)
        self.assertEqual(['object_class_action_versions'],
                         [trip.method for trip in shape.round_trips])

    def test_other_services_keep_their_database(self):
        self.useFixture(sr_fixtures.ProductionShape())
        db_api.instance_get_by_uuid(self.context, self.instance.uuid)

    def test_named_threads_run_as_nova_compute(self):
        module = sys.modules[__name__]
        self.useFixture(sr_fixtures.ProductionShape(
            threads=[(module, '_read_in_own_thread', False)]))
        found = []
        thread = threading.Thread(
            target=module._read_in_own_thread,
            args=(self.context, self.instance.uuid, found))
        thread.start()
        thread.join()
        self.assertEqual(1, len(found))
