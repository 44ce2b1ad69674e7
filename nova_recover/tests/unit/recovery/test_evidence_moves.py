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

from nova.compute import instance_actions
from nova.compute import task_states
from nova.compute import vm_states
from nova import objects

from nova_recover.startup_recovery import evidence
from nova_recover.tests.unit.recovery import test_evidence

FakeManager = test_evidence.FakeManager
HOST = test_evidence.HOST
COMPUTE_ACTION = test_evidence.COMPUTE_ACTION


class MoveEvidenceTestCase(test_evidence.EvidenceBase):
    """Where a move's request stands: reached, waiting, or handed on.

    A resize, a revert and an unshelve pass from one host or service to
    the next; the gate leaves an instance whose step here finished for
    the next step (evidence.handed_on) rather than take it as dead.
    """

    def test_volume_backed_shelve_goes_to_shelve_offload(self):
        instance = self._instance(task_states.SHELVING)
        ctxt = self._request(instance, instance_actions.SHELVE)
        self._event(ctxt, instance, 'shelve_offload_instance')
        self.assertFalse(self.queued(instance))

    def test_resize_to_another_host_reached_at_source_step(self):
        instance = self._instance(task_states.RESIZE_PREP)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', host='host2',
                    finish=True)
        self.assertTrue(self.queued(instance))
        self._event(ctxt, instance, 'resize_instance')
        self.assertFalse(self.queued(instance, FakeManager()))

    def test_resize_migrated_waits_for_finish_resize_here(self):
        # The source saved RESIZE_MIGRATED and cast finish_resize to us.
        instance = self._instance(task_states.RESIZE_MIGRATED)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', finish=True)
        self._event(ctxt, instance, 'resize_instance', host='host0',
                    finish=True)
        self.assertTrue(self.queued(instance))
        self._event(ctxt, instance, 'finish_resize')
        self.assertFalse(self.queued(instance, FakeManager()))

    def test_stop_of_a_revert_resize_is_reached(self):
        # finish_revert_resize of a stopped server stops it itself.
        instance = self._instance(task_states.POWERING_OFF,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        self._event(ctxt, instance, 'revert_resize', host='host2',
                    finish=True)
        self._event(ctxt, instance, 'finish_revert_resize')
        self.assertFalse(self.queued(instance))

    def test_revert_handed_to_the_source_is_not_a_death(self):
        """The destination's revert_resize finished: it cast the rest to

        the source, and instance.host stays the destination until the
        source saves. Before, that event read as a revert that died here.
        """
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        self._event(ctxt, instance, 'revert_resize', finish=True)
        self.assertTrue(self.queued(instance))
        with self.shape.compute_side():
            self.assertTrue(evidence.handed_on_here(self.manager, instance))

    def test_revert_that_died_here_is_reached(self):
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        self._event(ctxt, instance, 'revert_resize')
        self.assertFalse(self.queued(instance))
        self.assertFalse(evidence.handed_on_here(self.manager, instance))

    def test_same_host_resize_waits_for_its_source_step(self):
        """prep_resize finished and resize_instance is still queued here."""
        instance = self._instance(task_states.RESIZE_PREP)
        ctxt = self._request(instance, instance_actions.RESIZE)
        self._event(ctxt, instance, 'prep_resize', finish=True)
        self.assertTrue(self.queued(instance))
        self.assertTrue(evidence.handed_on_here(self.manager, instance))
        # Once the source step started here, it is one that died.
        self._event(ctxt, instance, 'resize_instance')
        self.assertFalse(self.queued(instance))
        self.assertFalse(evidence.handed_on_here(self.manager, instance))

    def test_failed_hand_off_is_not_handed_on(self):
        instance = self._instance(task_states.RESIZE_REVERTING,
                                  vm_state=vm_states.RESIZED)
        ctxt = self._request(instance, instance_actions.REVERT_RESIZE)
        name = evidence.PREFIX + 'revert_resize'
        objects.InstanceActionEvent.event_start(
            ctxt, instance.uuid, name, want_result=False, host=HOST)
        objects.InstanceActionEvent.event_finish_with_failure(
            ctxt, instance.uuid, name, exc_val='boom', exc_tb='tb',
            want_result=False)
        self.assertFalse(self.queued(instance))

    def test_start_of_an_unshelve(self):
        # The conductor unshelves a SHELVED server with a start cast.
        instance = self._instance(task_states.POWERING_ON,
                                  vm_state=vm_states.SHELVED)
        ctxt = self._request(instance, instance_actions.UNSHELVE)
        self.assertTrue(self.queued(instance))
        self._event(ctxt, instance, 'start_instance')
        self.assertFalse(self.queued(instance, FakeManager()))
