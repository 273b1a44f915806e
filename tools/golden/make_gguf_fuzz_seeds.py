#!/opt/golden-venv/bin/python
"""Writes small valid GGUF files (llama/qwen2/olmo2 in every supported type, K-quant blocks,
nested arrays) into DIR (default /tmp/fuzz-seeds) to seed tests/fuzz/fuzz_gguf.cpp:
  build-model-fuzz/fuzz_gguf -max_len=16384 CORPUS_DIR /tmp/fuzz-seeds tests/data/gguf-crashers"""
import sys
import numpy as np, gguf
from gguf import GGMLQuantizationType as T
rng = np.random.default_rng(1)
def model(path, arch, E=32, H=2, KV=1, F=32, V=8, L=1, qtype=T.F32, extra=None, output=False):
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(L); w.add_context_length(64); w.add_embedding_length(E)
    w.add_feed_forward_length(F); w.add_head_count(H); w.add_head_count_kv(KV)
    w.add_rope_freq_base(10000.0); w.add_layer_norm_rms_eps(1e-5); w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2"); w.add_token_list([f"t{i}" for i in range(V)])
    if extra: extra(w)
    hd = E // H
    def t(name, shape):  # shape in numpy order (rows, cols)
        a = rng.standard_normal(shape).astype(np.float32)
        if qtype in (T.F32,) or len(shape) == 1:
            w.add_tensor(name, a)
        elif qtype == T.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            q = gguf.quants.quantize(a, qtype)
            w.add_tensor(name, q, raw_dtype=qtype)
    t("token_embd.weight", (V, E)); t("output_norm.weight", (E,))
    if output: t("output.weight", (V, E))
    for il in range(L):
        p = f"blk.{il}."
        if arch != "olmo2": t(p + "attn_norm.weight", (E,))
        t(p + "attn_q.weight", (H * hd, E)); t(p + "attn_k.weight", (KV * hd, E))
        t(p + "attn_v.weight", (KV * hd, E)); t(p + "attn_output.weight", (E, H * hd))
        if arch == "qwen2":
            t(p + "attn_q.bias", (H * hd,)); t(p + "attn_k.bias", (KV * hd,)); t(p + "attn_v.bias", (KV * hd,))
        if arch == "olmo2":
            t(p + "attn_q_norm.weight", (H * hd,)); t(p + "attn_k_norm.weight", (KV * hd,))
            t(p + "post_attention_norm.weight", (E,)); t(p + "post_ffw_norm.weight", (E,))
        else:
            t(p + "ffn_norm.weight", (E,))
        t(p + "ffn_gate.weight", (F, E)); t(p + "ffn_up.weight", (F, E)); t(p + "ffn_down.weight", (E, F))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

import os
d = (sys.argv[1] if len(sys.argv) > 1 else "/tmp/fuzz-seeds").rstrip("/") + "/"
os.makedirs(d, exist_ok=True)
model(d + "llama_f32.gguf", "llama")
model(d + "llama_f16.gguf", "llama", qtype=T.F16, output=True)
model(d + "llama_q8.gguf", "llama", qtype=T.Q8_0)
model(d + "llama_q4_0.gguf", "llama", qtype=T.Q4_0)
model(d + "llama_q4_1.gguf", "llama", qtype=T.Q4_1)
model(d + "llama_bf16.gguf", "llama", qtype=T.BF16)
model(d + "qwen2.gguf", "qwen2")
model(d + "olmo2.gguf", "olmo2", KV=2, L=2, output=True, extra=lambda w: (
    w.add_sliding_window(16), w.add_sliding_window_pattern([True, False]),
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN), w.add_rope_scaling_factor(8.0),
    w.add_rope_scaling_orig_ctx_len(32), w.add_rope_scaling_yarn_attn_factor(1.2)))
model(d + "llama3.gguf", "llama", extra=lambda w: w.add_tensor("rope_freqs.weight", np.array([1,1,1,2,4,8,8,8], dtype=np.float32)))
# K-quant and misc metadata file (not a model)
w = gguf.GGUFWriter(d + "kquants.gguf", "llama")
w.add_array("nested", [[1, 2], [3]]); w.add_array("floats", [0.5, 1.5]); w.add_bool("b", True)
w.add_uint64("u64", 2**40); w.add_int8("i8", -3); w.add_float64("f64", 0.1)
w.add_tensor("q4k", rng.integers(0, 256, 144, dtype=np.uint8), raw_dtype=T.Q4_K)
w.add_tensor("q6k", rng.integers(0, 256, 210, dtype=np.uint8), raw_dtype=T.Q6_K)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
