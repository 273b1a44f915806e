#!/usr/bin/env python3
"""Prints the sha256 of every prompt the seed harness builds, computed by the harness's own code.

Usage: harness_prompt_hashes.py HARNESS_CHECKOUT [NUM_FLOWS]

HARNESS_CHECKOUT is a checkout of github.com/Ceon2000/le0-reference at commit fa357ea (the
version ROOT_CAUSE_ANALYSIS.md cites). The script runs, inside that checkout, the harness's
run_flow.build_multiple_flows (its flow expansion: fixture_loader.load_fixture, the prompt suite,
flows/_expanded_NN.json) and standalone_runner.execute_standalone (its prompt assembly), with
one stand-in: the module target_vllm, which would import vLLM and run the model, is replaced by
a function that records each prompt. Nothing else of the harness is changed.

Output: one line per prompt, "<sha256>  <NN>-<step>.txt", the format of
`flowrank expand JOB --hashes` (NN is the 1-based workflow number, zero-padded to 2 digits).
"""
import contextlib
import hashlib
import io
import os
import sys
import types


def main():
    harness = os.path.abspath(sys.argv[1])
    num_flows = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    os.chdir(harness)  # the harness reads fixtures/ and flows/ relative to its directory
    sys.path.insert(0, harness)
    sys.dont_write_bytecode = True

    records = []
    current = {"flow": 0}

    def run_prompt(prompt, step_name, max_tokens=1024, temperature=0.7):
        records.append((current["flow"], step_name, prompt))
        return b""

    stub = types.ModuleType("target_vllm")
    stub.run_prompt = run_prompt
    stub._ensure_model_loaded = lambda: None
    sys.modules["target_vllm"] = stub

    import run_flow  # noqa: E402  (the harness's own module)
    import standalone_runner  # noqa: E402

    # The harness prints [INPUT] lines on stdout while expanding; keep stdout for the hashes.
    with contextlib.redirect_stdout(io.StringIO()):
        run_flow.build_multiple_flows("flows/three_step.json", num_flows)

    original = standalone_runner.execute_one_workflow

    def execute_one_workflow(flow_file, flow_idx):
        current["flow"] = flow_idx
        return original(flow_file, flow_idx)

    standalone_runner.execute_one_workflow = execute_one_workflow
    standalone_runner.execute_standalone(num_flows)

    for flow, step, prompt in records:
        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        print(f"{digest}  {flow:02d}-{step}.txt")


if __name__ == "__main__":
    main()
