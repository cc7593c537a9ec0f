"""Unit tests for the podscope tap, against stubs of ComfyUI's PromptServer and execution module.

test_tap_in_comfyui.py runs the tap inside a real ComfyUI; these pin each rule on its own.

The stub keeps ComfyUI's real send_sync semantics (server.py): send_sync enqueues
(event, data, sid); delivery sends to every socket when sid is None, to that socket alone when
it is connected, and drops the message when it is not.
"""

import logging
import os
import queue
import sys
import unittest

os.environ["PODSCOPE_TAP_NO_AUTOINSTALL"] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import podscope_tap  # noqa: E402


class StubPromptServer:
    def __init__(self, sids):
        self.sockets = {sid: object() for sid in sids}
        self.messages = queue.Queue()
        self.received = {sid: [] for sid in sids}

    def send_sync(self, event, data, sid=None):
        self.messages.put_nowait((event, data, sid))

    def deliver(self):
        while not self.messages.empty():
            event, data, sid = self.messages.get_nowait()
            if sid is None:
                for s in self.sockets:
                    self.received[s].append((event, data))
            elif sid in self.sockets:
                self.received[sid].append((event, data))


def run_prompt(server, client_id):
    """The frames ComfyUI sends for one prompt (protocol 1.5), routed as execution.py does."""
    p = {"prompt_id": "P"}
    server.send_sync("status", {"status": {"exec_info": {"queue_remaining": 1}}}, None)
    server.send_sync("execution_start", {**p, "timestamp": 1}, client_id)
    server.send_sync("execution_cached", {**p, "nodes": ["4"], "timestamp": 2}, client_id)
    server.send_sync("executing", {**p, "node": "3", "display_node": "3"}, client_id)
    server.send_sync("progress", {**p, "value": 1, "max": 4, "node": "3"}, client_id)
    server.send_sync(1, b"\x00\x00\x00\x01jpeg", client_id)  # a binary preview
    server.send_sync("executed", {**p, "node": "9", "output": {"images": []}}, client_id)
    server.send_sync("execution_success", {**p, "timestamp": 3}, client_id)
    server.send_sync("executing", {**p, "node": None}, client_id)
    server.deliver()


class TapTest(unittest.TestCase):
    def test_copies_the_submitters_progress_and_outputs_to_podscope(self):
        server = StubPromptServer(["worker-1", "podscope-abc"])
        podscope_tap.install(server)
        run_prompt(server, "worker-1")
        events = [e for e, _ in server.received["podscope-abc"]]
        # execution_* come from the executor hook, node starts from the execute hook (see ExecutorHooksTest).
        self.assertEqual(events, ["status", "progress", "executed"])

    def test_the_submitter_receives_exactly_what_it_did_without_the_tap(self):
        plain = StubPromptServer(["worker-1", "podscope-abc"])
        run_prompt(plain, "worker-1")
        tapped = StubPromptServer(["worker-1", "podscope-abc"])
        podscope_tap.install(tapped)
        run_prompt(tapped, "worker-1")
        self.assertEqual(tapped.received["worker-1"], plain.received["worker-1"])

    def test_other_clients_receive_nothing_more(self):
        server = StubPromptServer(["worker-1", "browser-ui", "podscope-abc"])
        podscope_tap.install(server)
        run_prompt(server, "worker-1")
        self.assertEqual([e for e, _ in server.received["browser-ui"]], ["status"])

    def test_broadcasts_are_not_duplicated(self):
        server = StubPromptServer(["podscope-abc"])
        podscope_tap.install(server)
        server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, None)
        server.deliver()
        self.assertEqual(len(server.received["podscope-abc"]), 1)

    def test_nothing_is_queued_while_podscope_is_away(self):
        server = StubPromptServer(["worker-1"])
        podscope_tap.install(server)
        server.send_sync("executing", {"prompt_id": "P", "node": "3"}, "worker-1")
        self.assertEqual(server.messages.qsize(), 1)

    def test_drops_and_counts_when_comfyuis_queue_is_long(self):
        server = StubPromptServer(["worker-1", "podscope-abc"])
        stats = podscope_tap.install(server, max_queue=3).stats
        for _ in range(10):
            server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, "worker-1")
        # Ten originals always; a mirror only while the queue holds at most 3: after calls 1 and 2.
        self.assertEqual(server.messages.qsize(), 10 + 2)
        self.assertEqual(stats.sent, 2)
        self.assertEqual(stats.dropped, 8)

    def test_mirrors_to_every_podscope_socket(self):
        server = StubPromptServer(["worker-1", "podscope-a", "podscope-b"])
        podscope_tap.install(server)
        server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, "worker-1")
        server.deliver()
        self.assertEqual(len(server.received["podscope-a"]), 1)
        self.assertEqual(len(server.received["podscope-b"]), 1)

    def test_never_mirrors_a_podscope_prompt_back_to_itself(self):
        server = StubPromptServer(["podscope-a"])
        podscope_tap.install(server)
        server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, "podscope-a")
        server.deliver()
        self.assertEqual(len(server.received["podscope-a"]), 1)

    def test_disables_itself_with_one_line_when_internals_differ(self):
        class Different:
            pass

        with self.assertLogs("podscope_tap", level=logging.WARNING) as logs:
            self.assertIsNone(podscope_tap.install(Different()))
        self.assertEqual(len(logs.output), 1)
        self.assertIn("disabled", logs.output[0])

    def test_a_failure_inside_the_tap_never_reaches_comfyui(self):
        server = StubPromptServer(["worker-1", "podscope-a"])

        class Exploding(dict):
            def keys(self):
                raise RuntimeError("boom")

        server.sockets = Exploding(server.sockets)
        stats = podscope_tap.install(server).stats
        server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, "worker-1")  # must not raise
        self.assertEqual(stats.errors, 1)
        self.assertEqual(server.messages.qsize(), 1)  # the original still went out

    def test_installing_twice_wraps_once(self):
        server = StubPromptServer(["worker-1", "podscope-a"])
        first = podscope_tap.install(server)
        second = podscope_tap.install(server)
        self.assertIs(first, second)
        server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, "worker-1")
        self.assertEqual(server.messages.qsize(), 2)


class FakeExecution:
    """The shapes podscope's hooks rely on in ComfyUI's execution module (0.3.64)."""

    class ExecutionResult:
        SUCCESS = 0
        FAILURE = 1
        PENDING = 2

    def __init__(self):
        fake = self

        class PromptExecutor:
            def __init__(self, server):
                self.server = server
                self.status_messages = []

            def add_message(self, event, data, broadcast):
                data = {**data, "timestamp": 123}
                self.status_messages.append((event, data))
                if self.server.client_id is not None or broadcast:
                    self.server.send_sync(event, data, self.server.client_id)

            async def execute_async(self, prompt, prompt_id, extra_data={}, execute_outputs=[]):
                self.server.client_id = extra_data.get("client_id")
                self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
                for node_id in prompt:
                    await fake.execute(self.server, Dyn(prompt), Caches(), node_id, extra_data, set(), prompt_id, None, {}, {})
                self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)

        async def execute(server, dynprompt, caches, current_item, extra_data, executed, prompt_id, execution_list, pending_subgraph_results, pending_async_nodes):
            if dynprompt.get_node(current_item)["class_type"] == "Boom":
                raise ValueError("boom")
            return (FakeExecution.ExecutionResult.SUCCESS, None, None)

        async def validate_prompt(prompt_id, prompt, partial_execution_targets):
            return (True, None, ["9"], {})

        self.PromptExecutor = PromptExecutor
        self.execute = execute
        self.validate_prompt = validate_prompt


class Dyn:
    def __init__(self, prompt):
        self.prompt = prompt

    def get_node(self, node_id):
        return self.prompt[node_id]

    def get_display_node_id(self, node_id):
        return node_id


class Caches:
    class outputs:
        @staticmethod
        def get(node_id):
            return None


def run(coro):
    import asyncio

    return asyncio.run(coro)


class ExecutorHooksTest(unittest.TestCase):
    def setUp(self):
        self.server = StubPromptServer(["worker-1", "podscope-a"])
        self.server.client_id = None
        self.server.on_prompt = []
        self.server.add_on_prompt_handler = self.server.on_prompt.append
        self.execution = FakeExecution()
        self.tap = podscope_tap.install(self.server, self.execution)

    def podscope(self):
        self.server.deliver()
        return self.server.received["podscope-a"]

    def test_installs_every_hook_on_the_shapes_it_knows(self):
        self.assertEqual(set(self.tap.stats.hooks.values()), {True})

    def test_reports_a_prompt_without_client_id_with_the_executors_timestamps(self):
        executor = self.execution.PromptExecutor(self.server)
        run(executor.execute_async({"1": {"class_type": "A", "inputs": {"text": "a cat", "steps": 20}}}, "P", {"job_id": "J", "api_key_comfy_org": "k"}, ["1"]))
        frames = self.podscope()
        self.assertEqual([e for e, _ in frames], ["podscope.prompt_start", "execution_start", "podscope.node_start", "podscope.node_end", "execution_success"])
        start = frames[0][1]
        self.assertEqual(start["extra"], {"job_id": "J"})  # the key is a secret by name: left out
        self.assertEqual(start["graph"], {"1": {"class_type": "A", "inputs": {"steps": 20}}})  # no prompt text
        self.assertEqual(frames[1][1]["timestamp"], 123)
        self.assertEqual(self.server.received["worker-1"], [])

    def test_does_not_duplicate_what_comfyui_already_broadcast(self):
        executor = self.execution.PromptExecutor(self.server)
        executor.add_message("execution_interrupted", {"prompt_id": "P"}, broadcast=True)
        self.assertEqual([e for e, _ in self.podscope()], ["execution_interrupted"])

    def test_a_node_that_raises_still_ends_and_the_exception_reaches_comfyui_unchanged(self):
        executor = self.execution.PromptExecutor(self.server)
        with self.assertRaises(ValueError):
            run(executor.execute_async({"1": {"class_type": "Boom", "inputs": {}}}, "P", {"client_id": "worker-1"}, ["1"]))
        ends = [d for e, d in self.podscope() if e == "podscope.node_end"]
        self.assertEqual([(d["node_id"], d["outcome"]) for d in ends], [("1", "error")])

    def test_reports_a_validated_prompt_with_the_job_id_of_its_post(self):
        import contextvars

        async def post():
            for handler in self.server.on_prompt:
                handler({"prompt": {}, "extra_data": {"job_id": "J9"}, "client_id": "worker-1"})
            return await self.execution.validate_prompt("P9", {}, None)

        run(contextvars.copy_context().run(post))
        queued = dict(self.podscope())["podscope.prompt_queued"]
        self.assertEqual((queued["prompt_id"], queued["extra"]), ("P9", {"job_id": "J9", "client_id": "worker-1"}))

    def test_leaves_out_a_hook_whose_internal_is_shaped_differently(self):
        class Odd:
            async def execute(a, b):  # not ComfyUI's signature
                return None

            PromptExecutor = None

        server = StubPromptServer(["podscope-a"])
        with self.assertLogs("podscope_tap", level=logging.WARNING) as logs:
            tap = podscope_tap.install(server, Odd())
        self.assertEqual(tap.stats.hooks["execute"], False)
        self.assertEqual(tap.stats.hooks["send_sync"], True)
        self.assertEqual(len(logs.output), 1)


if __name__ == "__main__":
    unittest.main()
