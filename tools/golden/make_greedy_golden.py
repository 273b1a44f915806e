#!/usr/bin/env python3
"""Greedy-decoding goldens for the bundled SmolLM2 GGUF, computed by llama.cpp (llama-cpp-python).

Writes tests/data/golden/smollm2_greedy.json: per prompt the prompt token ids, the 64 greedily
generated ids, and per step the gap between the top-2 logits (so a test can be strict where the
gap is large and tolerant of genuine near-ties, since llama.cpp computes with quantized dot
products and we compute in f32). Also writes tests/data/golden/smollm2_logits.f32 (raw little-endian
f32) + its description in the JSON: llama.cpp's full logits of the first positions of 2 prompts.

Run: /opt/golden-venv/bin/python tools/golden/make_greedy_golden.py
"""
import json
import pathlib

import numpy as np
from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT_JSON = ROOT / "tests" / "data" / "golden" / "smollm2_greedy.json"
OUT_LOGITS = ROOT / "tests" / "data" / "golden" / "smollm2_logits.f32"
N_GEN = 64
LOGIT_POSITIONS = 4


def chat(msg):
    return f"<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n"


PROMPTS = [
    ("raw", "The capital of France is"),
    ("raw", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("raw", "Once upon a time, in a small village by the sea, there lived"),
    ("raw", "import numpy as np\n\n# Compute the mean of each row of a matrix\n"),
    ("raw", "Grüße aus München! Café, naïve, 東京, Москва — "),
    ("raw", "Instruction: Summarize the code below.\n\nInput: class Stack:\n    def __init__(self):\n        self.items = []\n"),
    ("chat", "What is the boiling point of water in Celsius?"),
    ("chat", "Write a Python function that reverses a string."),
    ("chat", "Translate to French: The weather is nice today."),
    ("chat", "List three primary colors."),
    ("chat", "Explain recursion in one sentence. 🙂"),
    ("raw", "SELECT name, COUNT(*) FROM users GROUP BY"),
]


def main():
    llm = Llama(model_path=str(MODEL), n_ctx=1024, n_batch=512, n_threads=2, logits_all=False,
                verbose=False, seed=0)
    n_vocab = llm.n_vocab()
    cases = []
    for kind, text in PROMPTS:
        full = chat(text) if kind == "chat" else text
        ids = llm.tokenize(full.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        gen, gaps = [], []
        for _ in range(N_GEN):
            # eval() keeps no scores without logits_all; read the last token's logits directly.
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).copy()
            order = np.argsort(-logits, kind="stable")
            gen.append(int(order[0]))
            gaps.append(float(logits[order[0]] - logits[order[1]]))
            llm.eval([int(order[0])])
        cases.append({"kind": kind, "text": text, "prompt_ids": [int(t) for t in ids],
                      "generated_ids": gen, "top2_gap": [round(g, 5) for g in gaps]})
        print(kind, repr(text[:40]), "min gap %.4f" % min(gaps), repr(llm.detokenize(gen)[:60]))

    # Full logits of the first positions of two prompts (logits_all).
    llm_all = Llama(model_path=str(MODEL), n_ctx=1024, n_batch=512, n_threads=2, logits_all=True,
                    verbose=False, seed=0)
    logit_cases = []
    blobs = []
    for idx in (0, 6):
        ids = cases[idx]["prompt_ids"][:LOGIT_POSITIONS]
        llm_all.reset()
        llm_all.eval(ids)
        scores = np.array(llm_all.scores[:len(ids)], dtype=np.float32)
        blobs.append(scores)
        logit_cases.append({"prompt_ids": ids, "positions": len(ids)})
    np.concatenate(blobs).astype("<f4").tofile(OUT_LOGITS)

    golden = {
        "generator": "llama-cpp-python (llama.cpp CPU, quantized matmuls), greedy argmax",
        "model": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "n_vocab": int(llm.n_vocab()),
        "cases": cases,
        "logits": {"file": OUT_LOGITS.name, "dtype": "float32 little-endian, row-major",
                   "cases": logit_cases},
    }
    OUT_JSON.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
