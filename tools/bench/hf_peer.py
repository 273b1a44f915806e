#!/usr/bin/env python3
"""HF transformers on the workloads of tools/bench/gpu, same shapes (Llama-3.1-8B), random bf16
weights, SDPA attention, greedy: a peer measured on the same GPU in the same run.

  hf_peer.py --engine-json FLOWRANK_ENGINE1.json FLOWRANK_ENGINE2.json

HF decodes about a dozen tokens/s at batch 1, so every decode figure runs 32 steps (after a
prefill of the 1024-token context, not timed) and is reported as a rate; the 1000 x (1000 +
1000) offline figure is estimated from the decode rate at batch 256 (its steady state, since
HF's static batch cannot admit more), which flatters HF: it leaves out its prefill and tail.
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

STEPS = 32


def model_8b():
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                      max_position_embeddings=131072, rope_theta=500000.0,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192},
                      torch_dtype="bfloat16", attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    m.eval()
    return m


def timed(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t, out


@torch.inference_mode()
def prefill_rate(m, tokens):
    ids = torch.randint(0, 128000, (1, tokens), device="cuda")
    m(ids, logits_to_keep=1)  # warm-up
    s, _ = timed(lambda: m(ids, logits_to_keep=1))
    return tokens / s


@torch.inference_mode()
def decode_rate(m, batch, context):
    ids = torch.randint(0, 128000, (batch, context), device="cuda")
    out = m(ids, use_cache=True, logits_to_keep=1)
    cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)

    def steps():
        nonlocal cache, nxt
        for _ in range(STEPS):
            o = m(nxt, past_key_values=cache, use_cache=True)
            cache, nxt = o.past_key_values, o.logits[:, -1].argmax(-1, keepdim=True)
    s, _ = timed(steps)
    return batch * STEPS / s


def ours(paths):
    rows = {}
    off = None
    for p in paths:
        j = json.load(open(p))
        for r in j.get("results", []):
            rows[(r["test"], r["batch"])] = r["tokens_per_s"]
        off = j.get("offline", off)
    return rows, off


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine-json", nargs="+", required=True)
    args = ap.parse_args()
    rows, off = ours(args.engine_json)
    m = model_8b()
    print("| test | batch | HF tokens/s | flowrank tokens/s | flowrank / HF |")
    print("|---|---:|---:|---:|---:|")
    for tokens in (1024, 30000):
        hf = prefill_rate(m, tokens)
        fr = rows.get((f"pp{tokens}", 1))
        print(f"| pp{tokens} | 1 | {hf:.0f} | {fr or float('nan'):.0f} | {(fr or 0) / hf:.1f}x |")
    for batch in (1, 8, 64, 256):
        hf = decode_rate(m, batch, 1024)
        fr = next((v for (t, b), v in rows.items() if t.startswith("tg") and b == batch), None)
        print(f"| tg@c1024 ({STEPS} steps) | {batch} | {hf:.0f} | {fr or float('nan'):.0f} | "
              f"{(fr or 0) / hf:.1f}x |")
        if batch == 256 and off:
            print(f"| offline 1000x(1000+1000), output tok/s (HF: batch-256 decode rate) | - | "
                  f"{hf:.0f} | {off['output_tokens_per_s']:.0f} | "
                  f"{off['output_tokens_per_s'] / hf:.1f}x |")


if __name__ == "__main__":
    main()
