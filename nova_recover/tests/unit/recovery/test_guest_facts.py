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

from nova import test
from nova.virt import fake
from nova.virt.libvirt import driver as libvirt_driver

from nova_recover.recovery import guest_facts


class ForDriverTestCase(test.NoDBTestCase):
    """Only a LibvirtDriver, or a subclass of it, has known facts."""

    def test_fake_driver_cannot_tell(self):
        facts = guest_facts.for_driver(fake.FakeDriver(None))
        self.assertIsInstance(facts, guest_facts.UnknownGuestFacts)
        self.assertIsNone(facts.has_saved_memory(None))
        self.assertIsNone(facts.resize_disk_moved(None))
        self.assertIsNone(facts.has_unrescue_record(None))
        self.assertIsNone(facts.runs_rescue_guest(None))

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
