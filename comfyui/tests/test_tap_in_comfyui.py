"""The tap inside a real ComfyUI: its real PromptServer, executor, validation and core nodes.

Run by the conformance suite (``npm run test:comfyui``) with ``PODSCOPE_COMFYUI_DIR`` naming a
ComfyUI checkout and ComfyUI's own Python; skipped without it. Sockets are entries in the real
``PromptServer.sockets``; what each client would receive is read from the server's real outgoing
queue, which ``send_sync`` fills and the server's publish loop would deliver.
"""

import asyncio
import inspect
import os
import sys
import unittest

COMFY = os.environ.get("PODSCOPE_COMFYUI_DIR")
HERE = os.path.dirname(os.path.abspath(__file__))

if COMFY:
    os.environ["PODSCOPE_TAP_NO_AUTOINSTALL"] = "1"
    sys.argv = [os.path.join(COMFY, "main.py"), "--cpu"]
    sys.path.insert(0, os.path.join(HERE, ".."))
    sys.path.insert(0, COMFY)
    os.chdir(COMFY)
    import comfy.options  # noqa: E402

    comfy.options.enable_args_parsing()
    import utils.extra_config  # noqa: E402,F401  ComfyUI's utils package before comfy/ joins sys.path, as main.py does
    import execution  # noqa: E402
    import nodes  # noqa: E402
    import server  # noqa: E402

    import podscope_tap  # noqa: E402

    LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(LOOP)
    SERVER = server.PromptServer(LOOP)
    QUEUE = execution.PromptQueue(SERVER)
    # Which validate_prompt this release has (before the tap wraps it): awaited with the prompt_id
    # made first (0.3.4x and later), or synchronous on the prompt alone (0.3.30).
    AWAITED_VALIDATION = inspect.iscoroutinefunction(execution.validate_prompt)

    class PodscopeTestRaise:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"image": ("IMAGE",)}}

        RETURN_TYPES = ("IMAGE",)
        FUNCTION = "run"
        CATEGORY = "podscope/test"

        def run(self, image):
            raise RuntimeError("raised on purpose")

    nodes.NODE_CLASS_MAPPINGS["PodscopeTestRaise"] = PodscopeTestRaise


def graph(*, fail=False, steps=None):
    g = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 7}},
        "2": {"class_type": "PodscopeTestRaise" if fail else "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}, "_meta": {"title": "secret prompt text stays out"}},
    }
    if steps is not None:
        g["1"]["inputs"]["width"] = steps
    return g


def drain():
    """Everything queued for delivery since the last drain: [(event, data, sid)]."""
    LOOP.run_until_complete(asyncio.sleep(0.01))
    out = []
    while not SERVER.messages.empty():
        out.append(SERVER.messages.get_nowait())
    return out


def to(messages, sid):
    return [(e, d) for e, d, s in messages if s == sid]


def run_prompt(prompt, prompt_id, extra):
    executor = execution.PromptExecutor(SERVER, cache_type=False)
    executor.execute(prompt, prompt_id, extra, ["3"])
    return drain()


def normalised(frames):
    """Frames without what differs between two runs (times, temp file names)."""
    out = []
    for event, data in frames:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in ("timestamp", "output")}
        out.append((event, data))
    return out


@unittest.skipUnless(COMFY, "set PODSCOPE_COMFYUI_DIR to a ComfyUI checkout (npm run test:comfyui does)")
class TapInComfyUI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plain = {}
        SERVER.sockets.clear()
        SERVER.sockets["worker"] = object()
        SERVER.sockets["podscope-1"] = object()
        drain()
        # What the submitter gets from this ComfyUI before the tap is installed.
        cls.plain["worker"] = normalised(to(run_prompt(graph(), "plain", {"client_id": "worker"}), "worker"))
        cls.tap = podscope_tap.install(SERVER, execution)

    def test_every_hook_fits_this_comfyui(self):
        self.assertEqual(
            self.tap.stats.hooks,
            {"send_sync": True, "add_message": True, "execute_async": True, "execute": True, "validate_prompt": True},
        )

    def test_the_submitter_receives_exactly_what_it_did_without_the_tap(self):
        got = normalised(to(run_prompt(graph(), "plain", {"client_id": "worker"}), "worker"))
        self.assertEqual(got, self.plain["worker"])

    def test_podscope_hears_the_start_every_node_and_the_outcome_of_a_clients_prompt(self):
        messages = to(run_prompt(graph(), "P2", {"client_id": "worker", "job_id": "J2", "api_key_comfy_org": "sk-x"}), "podscope-1")
        events = [e for e, _ in messages]
        start = dict(messages)["podscope.prompt_start"]
        self.assertEqual(start["extra"], {"client_id": "worker", "job_id": "J2"})
        self.assertEqual(start["graph"]["2"], {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}})
        self.assertEqual(start["graph"]["3"]["_meta"], {"title": "secret prompt text stays out"})
        self.assertEqual(start["outputs"], ["3"])
        self.assertEqual([d["node_id"] for e, d in messages if e == "podscope.node_start"], ["1", "2", "3"])
        ends = [d for e, d in messages if e == "podscope.node_end"]
        self.assertEqual([(d["node_id"], d["outcome"]) for d in ends], [("1", "success"), ("2", "success"), ("3", "success")])
        for d in ends:
            self.assertNotIn("peak_vram_bytes", d)  # CPU: absent, not zero
        starts = {d["node_id"]: d["t"] for e, d in messages if e == "podscope.node_start"}
        for d in ends:
            self.assertGreaterEqual(d["t"], starts[d["node_id"]])
        self.assertIn("execution_start", events)
        self.assertIn("executed", events)
        self.assertEqual(events[-1], "execution_success")
        self.assertNotIn("executing", events)

    def test_a_prompt_without_client_id_is_reported_to_podscope_alone(self):
        messages = run_prompt(graph(), "P3", {"job_id": "J3"})
        mine = [e for e, _ in to(messages, "podscope-1")]
        for event in ("podscope.prompt_start", "execution_start", "execution_cached", "podscope.node_end", "execution_success"):
            self.assertIn(event, mine)
        self.assertEqual(to(messages, "worker"), [])  # another client gets only broadcasts

    def test_a_node_that_raises_ends_in_error_and_comfyui_reports_it_as_before(self):
        messages = run_prompt(graph(fail=True), "P4", {"client_id": "worker", "job_id": "J4"})
        ends = [d for e, d in to(messages, "podscope-1") if e == "podscope.node_end"]
        self.assertEqual(ends[-1]["node_id"], "2")
        self.assertEqual(ends[-1]["outcome"], "error")
        worker_error = dict(to(messages, "worker"))["execution_error"]
        podscope_error = dict(to(messages, "podscope-1"))["execution_error"]
        self.assertEqual(worker_error["exception_message"].strip(), "raised on purpose")
        self.assertEqual(podscope_error, worker_error)

    def test_validation_reports_a_rejection_with_its_job_id_and_reasons(self):
        async def post(prompt, extra):
            # What this release's POST /prompt does: the on-prompt handlers, validation, and for a
            # valid prompt the queue (0.3.30 makes the prompt_id only then).
            SERVER.trigger_on_prompt({"prompt": prompt, "extra_data": extra, "client_id": "worker"})
            valid = await execution.validate_prompt("R1", prompt, None) if AWAITED_VALIDATION else execution.validate_prompt(prompt)
            if valid[0]:
                QUEUE.put((0, "R1", prompt, extra, valid[2]))
            return valid

        bad = graph()
        bad["1"]["inputs"]["width"] = 0
        valid = LOOP.run_until_complete(post(bad, {"job_id": "J5", "auth_token_comfy_org": "t"}))
        self.assertFalse(valid[0])
        rejected = dict(to(drain(), "podscope-1"))["podscope.prompt_rejected"]
        self.assertEqual(rejected["extra"], {"job_id": "J5", "client_id": "worker"})
        self.assertEqual(rejected["error"]["type"], "prompt_outputs_failed_validation")
        self.assertIn("1", rejected["node_errors"])
        # 0.3.30 makes no prompt_id for a rejected prompt: the tap names it with a UUID of its own.
        self.assertRegex(rejected["prompt_id"], r"^R1$" if AWAITED_VALIDATION else r"^[0-9a-f-]{36}$")
        LOOP.run_until_complete(post(graph(), {"job_id": "J6"}))
        queued = dict(to(drain(), "podscope-1"))["podscope.prompt_queued"]
        self.assertEqual((queued["prompt_id"], queued["extra"]["job_id"]), ("R1", "J6"))

    def test_nothing_is_queued_for_podscope_while_it_is_away(self):
        SERVER.sockets.pop("podscope-1")
        try:
            with_tap = run_prompt(graph(), "plain", {"client_id": "worker"})
        finally:
            SERVER.sockets["podscope-1"] = object()
        self.assertEqual([s for _, _, s in with_tap if s not in ("worker", None)], [])


if __name__ == "__main__":
    unittest.main()
