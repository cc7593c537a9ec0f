"""Test-only ComfyUI nodes for podscope's conformance suite (never shipped).

They stand in for the nodes a real workflow has, with no model weights: a sampler that reports
steps through comfy.utils.ProgressBar and draws a tqdm bar on stderr as k-diffusion samplers do, a
slow loader with no progress at all, a node that raises, and a node that prints a marker line.
"""

import logging
import time

import comfy.utils
from tqdm import trange


class PodscopeTqdmSampler:
    """Like KSampler: one ProgressBar tick and one tqdm step per step."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE",),
                "steps": ("INT", {"default": 10, "min": 1, "max": 10000}),
                "step_ms": ("INT", {"default": 50, "min": 0, "max": 60000}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "podscope/test"

    def run(self, image, steps, step_ms, seed):
        bar = comfy.utils.ProgressBar(steps)
        for _ in trange(steps):
            time.sleep(step_ms / 1000)
            bar.update(1)
        return (image,)


class PodscopeSlowLoad:
    """A loader that takes its time and reports no progress."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "ms": ("INT", {"default": 500, "min": 0, "max": 600000}), "seed": ("INT", {"default": 0, "min": 0, "max": 2**31})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "podscope/test"

    def run(self, image, ms, seed):
        time.sleep(ms / 1000)
        return (image,)


class PodscopeRaise:
    """Fails the way a broken node does."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "message": ("STRING", {"default": "podscope test node failed on purpose"})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "podscope/test"

    def run(self, image, message):
        raise RuntimeError(message)


class PodscopeMarker:
    """Logs one line (a marker the suite looks for in podscope's log buffer)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "marker": ("STRING", {"default": "podscope-marker"})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "podscope/test"

    def run(self, image, marker):
        logging.info(marker)
        return (image,)


NODE_CLASS_MAPPINGS = {
    "PodscopeTqdmSampler": PodscopeTqdmSampler,
    "PodscopeSlowLoad": PodscopeSlowLoad,
    "PodscopeRaise": PodscopeRaise,
    "PodscopeMarker": PodscopeMarker,
}
