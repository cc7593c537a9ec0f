"""What of a prompt the tap lets leave ComfyUI: extra_data's scalar, non-secret entries, and a
graph outline (class types, titles, links, steps) without prompt texts or other input values."""

import os
import sys
import unittest

os.environ["PODSCOPE_TAP_NO_AUTOINSTALL"] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import podscope_tap  # noqa: E402
from podscope_tap import graph_outline, scalar_extra  # noqa: E402


class ScalarExtra(unittest.TestCase):
    def test_keeps_the_job_id_client_id_and_trace_context(self):
        extra = {"job_id": "job-1", "client_id": "c", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
        self.assertEqual(scalar_extra(extra), extra)

    def test_drops_entries_whose_names_say_secret(self):
        extra = {"job_id": "j", "api_key": "sk-1", "HF_TOKEN": "hf_x", "auth_header": "Bearer y", "db_password": "p"}
        self.assertEqual(scalar_extra(extra), {"job_id": "j"})

    def test_drops_structures_such_as_the_ui_workflow(self):
        extra = {"job_id": "j", "extra_pnginfo": {"workflow": {"nodes": []}}, "tags": ["a"]}
        self.assertEqual(scalar_extra(extra), {"job_id": "j"})

    def test_keeps_numbers_booleans_and_none(self):
        self.assertEqual(scalar_extra({"n": 3, "f": 0.5, "b": True, "z": None}), {"n": 3, "f": 0.5, "b": True, "z": None})

    def test_cuts_long_strings(self):
        self.assertEqual(len(scalar_extra({"note": "x" * 10000})["note"]), podscope_tap.MAX_SCALAR)

    def test_answers_nothing_for_what_is_not_a_dict(self):
        self.assertEqual(scalar_extra(None), {})
        self.assertEqual(scalar_extra(["job_id", "j"]), {})

    def test_skips_keys_that_are_not_strings(self):
        self.assertEqual(scalar_extra({1: "a", "job_id": "j"}), {"job_id": "j"})


class GraphOutline(unittest.TestCase):
    PROMPT = {
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a secret product launch", "clip": ["4", 1]}, "_meta": {"title": "Positive"}},
        "3": {"class_type": "KSampler", "inputs": {"model": ["4", 0], "positive": ["6", 0], "steps": 20, "cfg": 7.5, "seed": 42}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "private_model.safetensors"}},
    }

    def test_keeps_class_types_titles_links_and_steps(self):
        out = graph_outline(self.PROMPT)
        self.assertEqual(out["3"], {"class_type": "KSampler", "inputs": {"model": ["4", 0], "positive": ["6", 0], "steps": 20}})
        self.assertEqual(out["6"], {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1]}, "_meta": {"title": "Positive"}})

    def test_leaves_out_prompt_texts_file_names_and_other_values(self):
        text = repr(graph_outline(self.PROMPT))
        for value in ("secret product launch", "private_model", "7.5", "42"):
            self.assertNotIn(value, text)

    def test_reads_a_numeric_link_source_as_a_node_id_string(self):
        self.assertEqual(graph_outline({"1": {"class_type": "X", "inputs": {"a": [7, 0]}}})["1"]["inputs"], {"a": ["7", 0]})

    def test_does_not_take_a_boolean_for_steps(self):
        self.assertEqual(graph_outline({"1": {"class_type": "X", "inputs": {"steps": True}}})["1"]["inputs"], {})

    def test_skips_nodes_that_are_not_dicts_and_survives_odd_inputs(self):
        out = graph_outline({"1": "junk", "2": {"class_type": "X", "inputs": "nope", "_meta": "nope"}})
        self.assertEqual(out, {"2": {"class_type": "X", "inputs": {}}})

    def test_cuts_long_titles(self):
        out = graph_outline({"1": {"class_type": "X", "inputs": {}, "_meta": {"title": "t" * 5000}}})
        self.assertEqual(len(out["1"]["_meta"]["title"]), podscope_tap.MAX_SCALAR)

    def test_answers_nothing_for_what_is_not_a_dict(self):
        self.assertEqual(graph_outline([1, 2]), {})


if __name__ == "__main__":
    unittest.main()
