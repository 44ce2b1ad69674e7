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

import os

import fixtures
from oslo_utils.fixture import uuidsentinel as uuids

from nova import exception
from nova import objects
from nova import test
from nova.virt import fake
from nova.virt.libvirt import driver as libvirt_driver

from nova_recover.startup_recovery import guest_facts


class ForDriverTestCase(test.NoDBTestCase):
    """Only a LibvirtDriver, or a subclass of it, has known facts."""

    def test_fake_driver_cannot_tell(self):
        facts = guest_facts.for_driver(fake.FakeDriver(None))
        self.assertIsInstance(facts, guest_facts.UnknownGuestFacts)
        self.assertIsNone(facts.has_saved_memory(None))
        self.assertIsNone(facts.resize_disk_moved(None))
        self.assertIsNone(facts.has_unrescue_record(None))
        self.assertIsNone(facts.runs_rescue_guest(None))
        self.assertIsNone(facts.left_live_snapshot(None))

    def test_libvirt_driver(self):
        driver = object.__new__(libvirt_driver.LibvirtDriver)
        facts = guest_facts.for_driver(driver)
        self.assertIsInstance(facts, guest_facts.LibvirtGuestFacts)
        self.assertIs(driver, facts.driver)

    def test_libvirt_driver_subclass(self):
        class Driver(libvirt_driver.LibvirtDriver):
            pass

        facts = guest_facts.for_driver(object.__new__(Driver))
        self.assertIsInstance(facts, guest_facts.LibvirtGuestFacts)

    def test_a_class_only_named_so_is_not_libvirt(self):
        class LibvirtDriver(object):
            pass

        facts = guest_facts.for_driver(LibvirtDriver())
        self.assertIsInstance(facts, guest_facts.UnknownGuestFacts)


class _Host(object):
    """What LibvirtGuestFacts reads the domain through."""

    def __init__(self, error):
        self.error = error

    def get_guest(self, instance):
        raise self.error


class LibvirtGuestFactsTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=instances_path)
        self.driver = object.__new__(libvirt_driver.LibvirtDriver)
        self.facts = guest_facts.LibvirtGuestFacts(self.driver)
        self.instance = objects.Instance(uuid=uuids.instance)
        self.instance_dir = os.path.join(instances_path, uuids.instance)
        os.makedirs(self.instance_dir)

    def test_no_domain(self):
        self.driver._host = _Host(exception.InstanceNotFound(
            instance_id=uuids.instance))
        self.assertIsNone(self.facts.has_saved_memory(self.instance))
        self.assertIsNone(self.facts.left_live_snapshot(self.instance))
        self.assertIsNone(self.facts.runs_rescue_guest(self.instance))

    def test_libvirt_unreadable_is_cannot_tell(self):
        self.driver._host = _Host(test.TestingException('libvirt down'))
        self.assertIsNone(self.facts.has_saved_memory(self.instance))
        self.assertIsNone(self.facts.runs_rescue_guest(self.instance))

    def test_unrescue_record(self):
        self.assertFalse(self.facts.has_unrescue_record(self.instance))
        with open(os.path.join(self.instance_dir, 'unrescue.xml'), 'w'):
            pass
        self.assertTrue(self.facts.has_unrescue_record(self.instance))

    def test_resize_disk_moved(self):
        self.assertFalse(self.facts.resize_disk_moved(self.instance))
        os.rename(self.instance_dir, self.instance_dir + '_resize')
        self.assertTrue(self.facts.resize_disk_moved(self.instance))

    def test_rescue_leftovers_removed_and_nothing_else(self):
        for name in ('disk', 'disk.rescue', 'kernel.rescue', 'console.log'):
            with open(os.path.join(self.instance_dir, name), 'w'):
                pass
        os.makedirs(os.path.join(self.instance_dir, 'config.rescue'))
        self.flags(images_volume_group=None, group='libvirt')
        self.facts.remove_rescue_leftovers(self.instance)
        self.assertEqual(['console.log', 'disk'],
                         sorted(os.listdir(self.instance_dir)))
