"""podscope tap: mirror ComfyUI's execution events to podscope.

ComfyUI sends a prompt's execution events only to the websocket of the client that submitted it.
This custom node wraps ``PromptServer.send_sync`` so that every execution event sent to one
client is also sent to each connected socket whose clientId starts with ``podscope-`` (podscope's
own sockets). Nothing else changes: the submitter and every other client receive exactly what
they received before, in the same order.

It never blocks ComfyUI: mirroring only enqueues (as ComfyUI itself does), nothing is mirrored
while no podscope socket is connected, and when ComfyUI's outgoing queue is already long the
mirror copies are dropped and counted instead of piling up. If ComfyUI's internals are not what
the tap expects, it disables itself with one log line and ComfyUI runs as if it were absent.

Install: copy this folder into ``ComfyUI/custom_nodes/``. Standard library only.
"""

import logging
import os

__version__ = "1"

EVENTS = frozenset(
    {
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "progress_state",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)

CLIENT_PREFIX = os.environ.get("PODSCOPE_TAP_CLIENT_PREFIX", "podscope-")
MAX_QUEUE = int(os.environ.get("PODSCOPE_TAP_MAX_QUEUE", "2000"))

log = logging.getLogger("podscope_tap")

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}


class TapStats:
    def __init__(self):
        self.mirrored = 0
        self.dropped = 0
        self.errors = 0

    def as_dict(self):
        return {"mirrored": self.mirrored, "dropped": self.dropped, "errors": self.errors}


def install(server, prefix=CLIENT_PREFIX, max_queue=MAX_QUEUE):
    """Wraps ``server.send_sync``. Returns the stats object, or None when the tap disabled itself."""
    send_sync = getattr(server, "send_sync", None)
    sockets = getattr(server, "sockets", None)
    if not callable(send_sync) or not isinstance(sockets, dict):
        log.warning("[podscope-tap] disabled: PromptServer has no send_sync or sockets; ComfyUI runs without the tap")
        return None
    existing = getattr(send_sync, "_podscope_tap_stats", None)
    if existing is not None:
        return existing

    stats = TapStats()
    messages = getattr(server, "messages", None)

    def backlog():
        try:
            return messages.qsize() if messages is not None else 0
        except Exception:
            return 0

    def tapped_send_sync(event, data, sid=None):
        # The original first: what every other client receives is unchanged.
        send_sync(event, data, sid)
        if sid is None or event not in EVENTS:
            return  # broadcasts already reach podscope; binary and custom events are not mirrored
        try:
            targets = [s for s in list(sockets.keys()) if isinstance(s, str) and s.startswith(prefix) and s != sid]
            if not targets:
                return  # podscope is away: nothing is queued for it
            if backlog() > max_queue:
                stats.dropped += len(targets)
                return
            for target in targets:
                send_sync(event, data, target)
                stats.mirrored += 1
        except Exception:  # the tap must never break ComfyUI
            stats.errors += 1

    tapped_send_sync._podscope_tap_stats = stats
    server.send_sync = tapped_send_sync
    _add_route(server, stats, prefix)
    log.info("[podscope-tap] mirroring execution events to clients named %s*", prefix)
    return stats


def _add_route(server, stats, prefix):
    routes = getattr(server, "routes", None)
    if routes is None or not hasattr(routes, "get"):
        return
    try:
        from aiohttp import web  # ComfyUI's own dependency; the tap works without the route if absent
    except Exception:
        return

    @routes.get("/podscope/tap")
    async def podscope_tap_info(request):
        return web.json_response({"tap": True, "version": __version__, "client_prefix": prefix, **stats.as_dict()})


def _install_into_comfyui():
    try:
        from server import PromptServer  # ComfyUI's module
    except Exception as err:
        log.warning("[podscope-tap] disabled: cannot import ComfyUI's PromptServer (%s)", err)
        return None
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        log.warning("[podscope-tap] disabled: PromptServer.instance does not exist yet")
        return None
    return install(instance)


if __name__ != "__main__" and not os.environ.get("PODSCOPE_TAP_NO_AUTOINSTALL"):
    _install_into_comfyui()
