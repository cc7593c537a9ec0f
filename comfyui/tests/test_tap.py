"""Unit tests for the podscope tap, against a stub of ComfyUI's PromptServer.

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
    def test_mirrors_every_execution_event_to_podscope(self):
        server = StubPromptServer(["worker-1", "podscope-abc"])
        podscope_tap.install(server)
        run_prompt(server, "worker-1")
        events = [e for e, _ in server.received["podscope-abc"]]
        self.assertEqual(
            events,
            ["status", "execution_start", "execution_cached", "executing", "progress", "executed", "execution_success", "executing"],
        )

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
        stats = podscope_tap.install(server, max_queue=3)
        for _ in range(10):
            server.send_sync("progress", {"prompt_id": "P", "value": 1, "max": 2, "node": "3"}, "worker-1")
        # Ten originals always; a mirror only while the queue holds at most 3: after calls 1 and 2.
        self.assertEqual(server.messages.qsize(), 10 + 2)
        self.assertEqual(stats.mirrored, 2)
        self.assertEqual(stats.dropped, 8)

    def test_mirrors_to_every_podscope_socket(self):
        server = StubPromptServer(["worker-1", "podscope-a", "podscope-b"])
        podscope_tap.install(server)
        server.send_sync("execution_start", {"prompt_id": "P"}, "worker-1")
        server.deliver()
        self.assertEqual(len(server.received["podscope-a"]), 1)
        self.assertEqual(len(server.received["podscope-b"]), 1)

    def test_never_mirrors_a_podscope_prompt_back_to_itself(self):
        server = StubPromptServer(["podscope-a"])
        podscope_tap.install(server)
        server.send_sync("execution_start", {"prompt_id": "P"}, "podscope-a")
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
        stats = podscope_tap.install(server)
        server.send_sync("execution_start", {"prompt_id": "P"}, "worker-1")  # must not raise
        self.assertEqual(stats.errors, 1)
        self.assertEqual(server.messages.qsize(), 1)  # the original still went out

    def test_installing_twice_wraps_once(self):
        server = StubPromptServer(["worker-1", "podscope-a"])
        first = podscope_tap.install(server)
        second = podscope_tap.install(server)
        self.assertIs(first, second)
        server.send_sync("execution_start", {"prompt_id": "P"}, "worker-1")
        self.assertEqual(server.messages.qsize(), 2)


if __name__ == "__main__":
    unittest.main()
