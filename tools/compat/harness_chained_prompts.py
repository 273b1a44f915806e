#!/usr/bin/env python3
"""The seed harness's latest chained prompts, built by its own code, for comparison with flowrank's
`layout = "seed-chained"`.

Usage:
  harness_chained_prompts.py flow HARNESS_CHECKOUT STOP > flow.json
      A flow template (flowrank format) with the harness runner's own step names and
      instructions (taken from its prompt builder), each step using every earlier one, stopping
      at STOP.
  harness_chained_prompts.py hashes HARNESS_CHECKOUT FLOW SUITE FIXTURES REPORT.h5 NUM_FLOWS
      One line per prompt, "<sha256>  <NN>-<step>.txt" (the format of `flowrank expand --hashes`),
      for the prompts the harness's runner would send given the same inputs: the suite's tasks
      (with the flow's `input`), the fixture files in place of its retrieved snippets, and the
      earlier steps' outputs from a flowrank report written with --keep-outputs.

HARNESS_CHECKOUT is github.com/Ceon2000/le0-reference at 6bd1939 (its latest commit), whose
standalone runner builds each prompt with agent_driver.build_step_prompt_baseline and sends it
through target_vllm.run_prompt, which applies target_vllm.ensure_bounded_prompt. Both are called
here unchanged; only the modules vllm and torch, which target_vllm imports at load time, are
replaced by empty stand-ins (no engine runs). The snippets the harness retrieves with its
repo_tool (hard-coded lookups per task) are replaced by the fixture files, sorted by path, each
as a whole-file snippet: flowrank has no retrieval tool (docs/COMPAT.md).
"""
import hashlib
import json
import os
import sys
import types


def load_harness(checkout):
    sys.path.insert(0, os.path.abspath(checkout))
    sys.dont_write_bytecode = True
    vllm = types.ModuleType("vllm")
    vllm.LLM = object
    vllm.SamplingParams = object
    sys.modules["vllm"] = vllm
    sys.modules["torch"] = types.ModuleType("torch")
    stderr = sys.stderr
    sys.stderr = open(os.devnull, "w")  # target_vllm announces itself on import
    try:
        import agent_driver
        import target_vllm
    finally:
        sys.stderr = stderr
    return agent_driver, target_vllm


def harness_instruction(agent_driver, step):
    # The builder's last part is "\n## Your Task: <Step>\n<instruction>".
    prompt = agent_driver.build_step_prompt_baseline(1, "", step, [], [])
    return prompt.split("\n## Your Task: ", 1)[1].split("\n", 1)[1]


def write_flow(checkout, stop):
    agent_driver, _ = load_harness(checkout)
    steps = []
    for i, name in enumerate(agent_driver.STEP_NAMES):
        step = {"name": name, "instruction": harness_instruction(agent_driver, name),
                "sampling": {"stop": [stop]}}
        if i:
            step["uses"] = agent_driver.STEP_NAMES[:i]
        steps.append(step)
    print(json.dumps({"name": "harness-chained", "input": "", "steps": steps}, indent=2))


def fixture_snippets(root):
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            files.append(os.path.relpath(path, root).replace(os.sep, "/"))
    snippets = []
    for rel in sorted(files, key=lambda p: p.encode("utf-8")):
        with open(os.path.join(root, rel), "r", encoding="utf-8") as f:
            text = f.read()
        snippets.append({"source_path": rel, "line_range": [1, text.count("\n") + 1],
                         "snippet_text": text})
    return snippets


def print_hashes(checkout, flow_path, suite_path, fixtures, report, num_flows):
    import h5py

    agent_driver, target_vllm = load_harness(checkout)
    with open(flow_path, encoding="utf-8") as f:
        flow = json.load(f)
    with open(suite_path, encoding="utf-8") as f:
        suite = json.load(f)
    tasks = suite if isinstance(suite, list) else [t["prompt"] for t in suite["tasks"]]
    lookups = fixture_snippets(fixtures)
    outputs = h5py.File(report, "r")["outputs"]
    for w in range(1, num_flows + 1):
        task = tasks[w - 1] + ("\n\n" + flow["input"] if flow["input"] else "")
        prior = []
        for s, step in enumerate(flow["steps"]):
            prompt = agent_driver.build_step_prompt_baseline(w, task, step["name"], lookups, prior)
            prompt = target_vllm.ensure_bounded_prompt(prompt)
            digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
            print(f"{digest}  {w:02d}-{step['name']}.txt")
            prior.append(outputs[str(w - 1)][str(s)][()].decode("utf-8", errors="replace"))


if __name__ == "__main__":
    if sys.argv[1] == "flow":
        write_flow(sys.argv[2], sys.argv[3])
    else:
        print_hashes(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
                     int(sys.argv[7]))
