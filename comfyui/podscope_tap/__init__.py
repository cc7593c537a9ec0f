"""podscope tap (v2): tell podscope what ComfyUI's executor does, for prompts from every client.

ComfyUI sends a prompt's execution events only to the websocket of the client that submitted it,
and sends most of them to nobody when the prompt has no client_id. This custom node reports to
podscope's own sockets (clientIds starting with ``podscope-``) from inside ComfyUI:

- ``podscope.prompt_queued`` / ``podscope.prompt_rejected``: when ``POST /prompt`` validates a
  prompt, with its prompt_id, the scalar ``extra_data`` (the platform's job id among them) and, for
  a rejection, ComfyUI's error and ``node_errors``;
- ``podscope.prompt_start``: when the executor takes a prompt, with its ids, its nodes (class
  types, titles, links, ``steps``) and the outputs it will run;
- ``podscope.node_start`` / ``podscope.node_end``: each executed node, with ComfyUI's clock and,
  where CUDA is present, the node's peak allocated VRAM (absent on CPU);
- ``execution_start``, ``execution_cached``, ``execution_success``, ``execution_error`` and
  ``execution_interrupted`` exactly as the executor records them (with its timestamps), and the
  submitter's ``progress``, ``progress_state`` and ``executed`` frames.

What every other client receives is unchanged: originals are sent first and untouched, copies go
only to podscope's sockets, and nothing is queued while none is connected. When ComfyUI's outgoing
queue is already long, copies are dropped and counted. Any failure inside the tap is counted, never
raised. Each hook fits the shape it finds, by inspecting the function (never by version number):
the executor and node ``execute`` synchronous (releases before mid-2025, 0.3.30 among them) or
coroutines (0.3.4x and later), and ``validate_prompt(prompt)`` synchronous, with the prompt_id
made after it (the queued report then comes from ``PromptQueue.put``), or
``validate_prompt(prompt_id, prompt, …)`` awaited. A hook whose ComfyUI internal is missing or
shaped otherwise is left out, and the tap says so in one log line; with none left, ComfyUI runs as
if the tap were absent.

Install: copy this folder into ``ComfyUI/custom_nodes/``. Standard library only.
"""

import contextvars
import inspect
import logging
import os
import re
import time
import uuid

__version__ = "2"

CLIENT_PREFIX = os.environ.get("PODSCOPE_TAP_CLIENT_PREFIX", "podscope-")
MAX_QUEUE = int(os.environ.get("PODSCOPE_TAP_MAX_QUEUE", "2000"))

# Frames ComfyUI sends only to the submitter that podscope copies as they are.
MIRRORED_FRAMES = frozenset({"progress", "progress_state", "executed"})
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE", re.IGNORECASE)
MAX_SCALAR = 256

log = logging.getLogger("podscope_tap")

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

# The job-related extra_data of the POST /prompt being handled (set by the on-prompt handler,
# read by the validate_prompt hook that the same request awaits next).
_posted = contextvars.ContextVar("podscope_posted", default=None)


def now_ms():
    return int(time.time() * 1000)


class TapStats:
    def __init__(self):
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self.hooks = {}

    def as_dict(self):
        return {"sent": self.sent, "dropped": self.dropped, "errors": self.errors, "hooks": dict(self.hooks)}


def scalar_extra(extra):
    """extra_data's scalar entries that are not secrets by name (the job id, client_id, trace ids)."""
    out = {}
    if not isinstance(extra, dict):
        return out
    for k, v in extra.items():
        if not isinstance(k, str) or SECRET_NAME.search(k):
            continue
        if isinstance(v, bool) or isinstance(v, (int, float)) or v is None:
            out[k] = v
        elif isinstance(v, str):
            out[k] = v[:MAX_SCALAR]
    return out


def graph_outline(prompt):
    """Each node's class type, title, links to its inputs and numeric ``steps``: enough to order
    the nodes and weigh their work, without prompt texts or other input values."""
    out = {}
    if not isinstance(prompt, dict):
        return out
    for node_id, node in prompt.items():
        if not isinstance(node, dict):
            continue
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        kept = {}
        for name, v in inputs.items():
            if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[0], (str, int)) and isinstance(v[1], int):
                kept[name] = [str(v[0]), v[1]]
            elif name == "steps" and isinstance(v, int) and not isinstance(v, bool):
                kept[name] = v
        meta = node.get("_meta") if isinstance(node.get("_meta"), dict) else {}
        entry = {"class_type": str(node.get("class_type", "")), "inputs": kept}
        if isinstance(meta.get("title"), str):
            entry["_meta"] = {"title": meta["title"][:MAX_SCALAR]}
        out[str(node_id)] = entry
    return out


class Tap:
    """Sends events to podscope's sockets through ComfyUI's own (original) send_sync."""

    def __init__(self, server, send, prefix, max_queue):
        self.server = server
        self.send = send
        self.prefix = prefix
        self.max_queue = max_queue
        self.stats = TapStats()

    def targets(self, exclude=None):
        sockets = getattr(self.server, "sockets", None) or {}
        return [s for s in list(sockets.keys()) if isinstance(s, str) and s.startswith(self.prefix) and s != exclude]

    def backlog(self):
        try:
            messages = getattr(self.server, "messages", None)
            return messages.qsize() if messages is not None else 0
        except Exception:
            return 0

    def emit(self, event, data, exclude=None):
        """Sends one event to every podscope socket; never raises."""
        try:
            targets = self.targets(exclude)
            if not targets:
                return  # podscope is away: nothing is queued for it
            if self.backlog() > self.max_queue:
                self.stats.dropped += len(targets)
                return
            for target in targets:
                self.send(event, data, target)
                self.stats.sent += 1
        except Exception:
            self.stats.errors += 1

    def guard(self, fn):
        """Runs a reporting step; a failure is counted, never raised into ComfyUI."""
        try:
            fn()
        except Exception:
            self.stats.errors += 1


def _params(fn):
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def hook_send_sync(tap):
    """Copies the submitter's progress, progress_state and executed frames to podscope."""
    original = tap.send

    def tapped_send_sync(event, data, sid=None):
        original(event, data, sid)  # first, and unchanged
        if sid is not None and event in MIRRORED_FRAMES:
            tap.emit(event, data, exclude=sid)

    tapped_send_sync._podscope_tap = tap
    tap.server.send_sync = tapped_send_sync
    return True


def hook_executor(tap, execution):
    """PromptExecutor.add_message (outcome events for every prompt) and execute_async (prompt start)."""
    executor = getattr(execution, "PromptExecutor", None)
    add_message = getattr(executor, "add_message", None)
    execute_async = getattr(executor, "execute_async", None)
    # Before execute_async existed, the executor's execute was the prompt's whole run, synchronous.
    execute_sync = getattr(executor, "execute", None) if execute_async is None else None
    ok = {"add_message": False, "execute_async": False}
    if callable(add_message) and _params(add_message)[:4] == ["self", "event", "data", "broadcast"]:

        def tapped_add_message(self, event, data, broadcast):
            add_message(self, event, data, broadcast)

            def report():
                # podscope already has it when ComfyUI broadcast it (a prompt without client_id).
                client = getattr(self.server, "client_id", None)
                if broadcast and client is None:
                    return
                messages = getattr(self, "status_messages", None)
                recorded = messages[-1][1] if messages and messages[-1][0] == event else data
                tap.emit(event, recorded, exclude=client)

            tap.guard(report)

        executor.add_message = tapped_add_message
        ok["add_message"] = True
    run_params = ["self", "prompt", "prompt_id", "extra_data", "execute_outputs"]

    def started(prompt, prompt_id, extra_data, execute_outputs):
        tap.guard(
            lambda: tap.emit(
                "podscope.prompt_start",
                {
                    "prompt_id": prompt_id,
                    "extra": scalar_extra(extra_data),
                    "graph": graph_outline(prompt),
                    "outputs": [str(o) for o in (execute_outputs or [])],
                    "t": now_ms(),
                },
            )
        )

    if callable(execute_async) and inspect.iscoroutinefunction(execute_async) and _params(execute_async)[:5] == run_params:

        async def tapped_execute_async(self, prompt, prompt_id, extra_data={}, execute_outputs=[], *args, **kwargs):
            started(prompt, prompt_id, extra_data, execute_outputs)
            return await execute_async(self, prompt, prompt_id, extra_data, execute_outputs, *args, **kwargs)

        executor.execute_async = tapped_execute_async
        ok["execute_async"] = True
    elif callable(execute_sync) and not inspect.iscoroutinefunction(execute_sync) and _params(execute_sync)[:5] == run_params:

        def tapped_execute(self, prompt, prompt_id, extra_data={}, execute_outputs=[], *args, **kwargs):
            started(prompt, prompt_id, extra_data, execute_outputs)
            return execute_sync(self, prompt, prompt_id, extra_data, execute_outputs, *args, **kwargs)

        executor.execute = tapped_execute
        ok["execute_async"] = True
    return ok


class _Vram:
    """Peak allocated VRAM of one node, from torch's allocator; None without CUDA."""

    def __init__(self):
        self.torch = None
        try:
            import torch  # ComfyUI's own dependency

            if torch.cuda.is_available():
                self.torch = torch
        except Exception:
            self.torch = None

    def reset(self):
        if self.torch is not None:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self):
        return int(self.torch.cuda.max_memory_allocated()) if self.torch is not None else None


def hook_execute(tap, execution):
    """execution.execute (one node): start and end times, outcome and peak VRAM of every executed node."""
    execute = getattr(execution, "execute", None)
    names = _params(execute) if callable(execute) else []
    wanted = ["server", "dynprompt", "caches", "current_item"]
    if names[:4] != wanted or "prompt_id" not in names:
        return False
    at = {name: i for i, name in enumerate(names)}
    vram = _Vram()
    success = getattr(getattr(execution, "ExecutionResult", None), "SUCCESS", None)
    pending = getattr(getattr(execution, "ExecutionResult", None), "PENDING", None)

    def around(args, kwargs):
        """Reports the node's start; returns what reports its end with the result (or None on a raise)."""

        def arg(name):
            return kwargs[name] if name in kwargs else (args[at[name]] if at[name] < len(args) else None)

        node = {}

        def before():
            dynprompt, caches, node_id = arg("dynprompt"), arg("caches"), arg("current_item")
            if caches.outputs.get(node_id) is not None:
                return  # cached: execution_cached already names it
            node.update(
                prompt_id=arg("prompt_id"),
                node_id=str(node_id),
                display_node_id=str(dynprompt.get_display_node_id(node_id)),
                class_type=str(dynprompt.get_node(node_id).get("class_type", "")),
            )
            vram.reset()
            tap.emit("podscope.node_start", {**node, "t": now_ms()})

        tap.guard(before)

        def ended(result):
            if not node:
                return
            first = result[0] if isinstance(result, tuple) and result else result
            outcome = "error" if result is None else "success" if first == success else "pending" if first == pending else "error"

            def after():
                end = {**node, "t": now_ms(), "outcome": outcome}
                peak = vram.peak()
                if peak is not None:
                    end["peak_vram_bytes"] = peak
                tap.emit("podscope.node_end", end)

            tap.guard(after)

        return ended

    if inspect.iscoroutinefunction(execute):

        async def tapped_execute(*args, **kwargs):
            ended, result = around(args, kwargs), None
            try:
                result = await execute(*args, **kwargs)
                return result
            finally:
                ended(result)

    else:

        def tapped_execute(*args, **kwargs):
            ended, result = around(args, kwargs), None
            try:
                result = execute(*args, **kwargs)
                return result
            finally:
                ended(result)

    tapped_execute._podscope_tap = tap
    execution.execute = tapped_execute
    return True


def hook_validation(tap, server, execution):
    """POST /prompt: the on-prompt handler keeps the request's extra_data, the validate_prompt hook
    reports the verdict with it (queued, or rejected with ComfyUI's error and node_errors)."""
    add_handler = getattr(server, "add_on_prompt_handler", None)
    validate = getattr(execution, "validate_prompt", None)
    if not callable(add_handler) or not callable(validate):
        return False
    params = _params(validate)
    if inspect.iscoroutinefunction(validate) and params[:2] == ["prompt_id", "prompt"]:
        hook = _validation_awaited
    elif not inspect.iscoroutinefunction(validate) and params == ["prompt"] and callable(getattr(getattr(execution, "PromptQueue", None), "put", None)):
        hook = _validation_sync
    else:
        return False

    def on_prompt(json_data):
        def keep():
            extra = scalar_extra(json_data.get("extra_data")) if isinstance(json_data, dict) else {}
            if isinstance(json_data, dict) and isinstance(json_data.get("client_id"), str):
                extra["client_id"] = json_data["client_id"][:MAX_SCALAR]
            _posted.set({"extra": extra, "t": now_ms()})

        tap.guard(keep)
        return json_data

    add_handler(on_prompt)
    hook(tap, execution, validate)
    return True


def _verdict(tap, prompt_id, posted, result):
    ok = bool(result[0])
    data = {"prompt_id": str(prompt_id), "extra": posted["extra"], "t": posted["t"]}
    if not ok:
        data["error"] = result[1] if len(result) > 1 else None
        data["node_errors"] = result[3] if len(result) > 3 else {}
    tap.emit("podscope.prompt_queued" if ok else "podscope.prompt_rejected", data)


def _validation_awaited(tap, execution, validate):
    """``await validate_prompt(prompt_id, prompt, …)``: the prompt_id exists before the verdict."""

    async def tapped_validate_prompt(prompt_id, prompt, *args, **kwargs):
        result = await validate(prompt_id, prompt, *args, **kwargs)
        posted = _posted.get()
        if posted is not None:
            _posted.set(None)
            tap.guard(lambda: _verdict(tap, prompt_id, posted, result))
        return result

    tapped_validate_prompt._podscope_tap = tap
    execution.validate_prompt = tapped_validate_prompt


def _validation_sync(tap, execution, validate):
    """``validate_prompt(prompt)``, synchronous, with the prompt_id made only for a valid prompt,
    just before ``PromptQueue.put``: a rejection is reported at once (under an id the tap makes,
    since ComfyUI makes none), a valid prompt when the same request puts it on the queue."""
    queue = execution.PromptQueue
    put = queue.put

    def tapped_validate_prompt(prompt, *args, **kwargs):
        result = validate(prompt, *args, **kwargs)
        posted = _posted.get()
        if posted is not None and not (isinstance(result, (tuple, list)) and result and result[0]):
            _posted.set(None)
            tap.guard(lambda: _verdict(tap, uuid.uuid4(), posted, result))
        return result

    def tapped_put(self, item, *args, **kwargs):
        put(self, item, *args, **kwargs)
        posted = _posted.get()
        if posted is not None:
            _posted.set(None)
            tap.guard(lambda: _verdict(tap, item[1], posted, (True,)))

    tapped_validate_prompt._podscope_tap = tap
    execution.validate_prompt = tapped_validate_prompt
    queue.put = tapped_put


def install(server, execution=None, prefix=CLIENT_PREFIX, max_queue=MAX_QUEUE):
    """Installs every hook that fits this ComfyUI. Returns the Tap, or None when none could be installed."""
    send_sync = getattr(server, "send_sync", None)
    if not callable(send_sync) or not isinstance(getattr(server, "sockets", None), dict):
        log.warning("[podscope-tap] disabled: PromptServer has no send_sync or sockets; ComfyUI runs without the tap")
        return None
    existing = getattr(send_sync, "_podscope_tap", None)
    if existing is not None:
        return existing
    tap = Tap(server, send_sync, prefix, max_queue)
    hooks = tap.stats.hooks
    for name, install_hook in (
        ("send_sync", lambda: hook_send_sync(tap)),
        ("executor", lambda: hook_executor(tap, execution) if execution is not None else {"add_message": False, "execute_async": False}),
        ("execute", lambda: execution is not None and hook_execute(tap, execution)),
        ("validate_prompt", lambda: execution is not None and hook_validation(tap, server, execution)),
    ):
        try:
            got = install_hook()
        except Exception as err:  # an internal shaped differently: leave that hook out
            log.debug("[podscope-tap] %s hook failed: %s", name, err)
            got = False
        if isinstance(got, dict):
            hooks.update(got)
        else:
            hooks[name] = bool(got)
    _add_route(server, tap)
    missing = sorted(k for k, v in hooks.items() if not v)
    if missing:
        log.warning("[podscope-tap] v%s installed without %s (this ComfyUI's internals differ); podscope sees less", __version__, ", ".join(missing))
    else:
        log.info("[podscope-tap] v%s reporting to clients named %s*", __version__, prefix)
    return tap


def _add_route(server, tap):
    routes = getattr(server, "routes", None)
    if routes is None or not hasattr(routes, "get"):
        return
    try:
        from aiohttp import web  # ComfyUI's own dependency; the tap works without the route if absent
    except Exception:
        return

    @routes.get("/podscope/tap")
    async def podscope_tap_info(request):
        return web.json_response({"tap": True, "version": __version__, "client_prefix": tap.prefix, **tap.stats.as_dict()})


def _install_into_comfyui():
    try:
        from server import PromptServer  # ComfyUI's modules
        import execution
    except Exception as err:
        log.warning("[podscope-tap] disabled: cannot import ComfyUI's server and execution modules (%s)", err)
        return None
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        log.warning("[podscope-tap] disabled: PromptServer.instance does not exist yet")
        return None
    return install(instance, execution)


if __name__ != "__main__" and not os.environ.get("PODSCOPE_TAP_NO_AUTOINSTALL"):
    _install_into_comfyui()
