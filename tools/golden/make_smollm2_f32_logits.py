#!/usr/bin/env python3
"""llama.cpp's logits for the bundled SmolLM2 with every tensor dequantized to F32 first.

llama.cpp then computes in f32 like our CPU backend (F32 weights, F32 KV cache, no flash
attention), so the two agree to f32 rounding rather than to Q8_1-activation noise. Writes
tests/data/golden/smollm2_f32_logits.f32 (last-position logits of each prompt, little-endian f32)
and smollm2_f32_logits.json (prompt ids, plus llama.cpp's f32 greedy continuation of every prompt of
smollm2_greedy.json with per-step top-2 gaps). The F32 GGUF itself (0.5 GB) stays in /tmp.

Run: /opt/golden-venv/bin/python tools/golden/make_smollm2_f32_logits.py
"""
import json
import pathlib
import sys

import numpy as np
from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
F32_MODEL = pathlib.Path("/tmp/smollm2_f32.gguf")
OUT = ROOT / "tests" / "data" / "golden"

sys.path.insert(0, str(ROOT / "tools" / "bench"))
from llama_peer import write_f32_copy  # noqa: E402  (the one F32 writer, shared with the bench)


def main():
    if not F32_MODEL.exists():
        write_f32_copy(MODEL, F32_MODEL)
    golden = json.loads((OUT / "smollm2_greedy.json").read_text())
    prompts = [golden["cases"][0]["prompt_ids"], golden["cases"][7]["prompt_ids"]]
    llm = Llama(model_path=str(F32_MODEL), n_ctx=512, n_batch=512, n_threads=2, logits_all=True,
                type_k=0, type_v=0, flash_attn=False, verbose=False)
    rows = []
    for ids in prompts:
        llm.reset()
        llm.eval(ids)
        rows.append(np.array(llm.scores[len(ids) - 1], dtype=np.float32))
    np.stack(rows).astype("<f4").tofile(OUT / "smollm2_f32_logits.f32")

    # Greedy continuations in f32: our runner must reproduce these token for token.
    greedy = []
    n_vocab = llm.n_vocab()
    for case in golden["cases"]:
        ids = case["prompt_ids"]
        llm.reset()
        llm.eval(ids)
        gen, gaps = [], []
        for _ in range(len(case["generated_ids"])):
            logits = np.array(llm.scores[llm.n_tokens - 1][:n_vocab], dtype=np.float32)
            order = np.argsort(-logits, kind="stable")
            gen.append(int(order[0]))
            gaps.append(round(float(logits[order[0]] - logits[order[1]]), 6))
            llm.eval([int(order[0])])
        greedy.append({"prompt_ids": ids, "generated_ids": gen, "top2_gap": gaps})
        print("min gap %.5f" % min(gaps), "same as quantized llama.cpp:",
              gen == case["generated_ids"])
    (OUT / "smollm2_f32_logits.json").write_text(json.dumps({
        "generator": "llama-cpp-python on the SmolLM2 GGUF dequantized to F32 (F32 KV cache, "
                     "no flash attention); logits of the last prompt position",
        "prompts": prompts, "greedy": greedy}, indent=1) + "\n")
    print("wrote", len(rows), "rows")


if __name__ == "__main__":
    main()
