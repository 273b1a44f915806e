#!/usr/bin/env python3
"""One table row for a seed-25x3 run on the GPU: wall time against the work's floor.

  seed_floor.py REPORT.h5 LIMITS.json START END LAYOUT [COMMON_PREFIX_TOKENS]

The floor is what an ideal engine needs on this GPU for the steps the report lists, as if every
sequence fit in memory at once: prefill FLOPs of the tokens not taken from the prefix cache
(GEMMs plus causal attention, the window on 24 of OLMo-3's 32 layers) at the GEMM rate measured
in the same run, plus, per decode step, the weights once and each running sequence's KV once
(a prefix shared by every sequence read once per step, as cascade attention does) at the
measured copy bandwidth. COMMON_PREFIX_TOKENS is that prefix (`flowrank expand JOB --explain`,
"common to every prompt"); without it, the smallest prefix-cache hit stands in for it.
"""
import json
import sys

import h5py

# OLMo-3-7B: 32 layers (every 4th full attention, the rest a 4096-token window), 32 heads of
# 128 (no grouping), bf16.
L, L_FULL, WINDOW, HEADS, HEAD_DIM, EMBD, FF, VOCAB = 32, 8, 4096, 32, 128, 4096, 11008, 100278
PARAMS = L * (EMBD * 3 * HEADS * HEAD_DIM + HEADS * HEAD_DIM * EMBD + 3 * EMBD * FF)
WEIGHT_BYTES = 2 * (PARAMS + 2 * VOCAB * EMBD)
KV_PER_TOKEN_LAYER = 2 * HEADS * HEAD_DIM * 2


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def kv_read(ctx, first=0):
    """KV bytes one query at context ctx reads over positions [first, ctx)."""
    full = max(ctx - first, 0)
    windowed = max(ctx - max(first, ctx - WINDOW), 0)
    return KV_PER_TOKEN_LAYER * (L_FULL * full + (L - L_FULL) * windowed)


def attention_flops(pos):
    return 4 * HEADS * HEAD_DIM * (L_FULL * pos + (L - L_FULL) * min(pos, WINDOW))


def main(path, limits, start, end, layout, common=None):
    lim = json.load(open(limits))["limits"]
    bw, gemm = lim["copy_bytes_per_s"], lim["bf16_gemm_flops"]
    f = h5py.File(path, "r")
    steps = f["steps"][()]
    prompt, cached, decode = steps["prompt_tokens"], steps["cached_tokens"], steps["decode_tokens"]
    # The first sequence computes the prefix every later one reuses, so its cached count is 0: the
    # shared prefix is the smallest count among the others.
    reused = [int(c) for c in cached if c > 0]
    shared = min(reused) if layout == "context-first" and reused else 0
    if common is not None:
        shared = int(common)
    prefill = 0.0
    for p, c in zip(prompt, cached):
        p, c = int(p), int(c)
        prefill += 2 * (PARAMS + VOCAB * EMBD) + 2 * PARAMS * (p - c - 1)
        prefill += sum(attention_flops(q) * 64 for q in range(c, p, 64))
    steps_n = int(max(decode))
    kv = 0.0
    for p, d in zip(prompt, decode):
        for t in range(0, int(d), 16):
            kv += 16 * kv_read(int(p) + t, shared)
    kv += steps_n * kv_read(shared)  # the shared prefix, once per step
    floor = prefill / gemm + (steps_n * WEIGHT_BYTES + kv) / bw
    wall = float(end) - float(start)
    ttft = [float(x) for x in steps["ttft_ms"]]
    preload = [float(r["duration_s"]) for r in f["phases"][()] if text(r["phase"]) == "engine_preload"]
    print(f"| {layout} | {wall:.1f} | {floor:.1f} | {wall / floor:.2f} | "
          f"{preload[0] if preload else float('nan'):.2f} | {ttft[0]:.0f} | "
          f"{sorted(ttft)[len(ttft) // 2]:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    main(*sys.argv[1:])
