#!/usr/bin/env python3
"""Small random-weight models as GGUF + reference logits from HF transformers' own modeling code.

For each model: tests/data/golden/<name>.gguf (F16 matrices, F32 norms), <name>_logits.f32 (HF logits of every
position of each token sequence, f32 little-endian, [seq][pos][vocab]) and an entry in
arch_golden.json with the sequences and the ModelConfig values the GGUF is meant to produce.

  olmo3_tiny   olmo2 arch, QK-norm, post-norms, NEOX rope, sliding window 8 on layers 0-2
               (pattern 4: layer 3 full), YaRN (factor 4, original context 256) on the full layer
               only, as HF Olmo3 does.
  olmo2_tiny   olmo2 arch, no sliding window, no rope scaling (OLMo-2).
  llama3_tiny  llama arch, GQA, llama3 rope scaling (factor 8, low 1, high 4, original 32) with
               Q/K rows permuted for llama.cpp's interleaved rope, as convert_hf_to_gguf does, and
               llama.cpp's rope_freqs.weight.

Run: /opt/golden-venv/bin/python tools/golden/make_arch_golden.py
"""
import json
import math
import pathlib

import gguf
import numpy as np
import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "golden"
VOCAB, EMBD, FF, HEADS, KV_HEADS, LAYERS = 256, 64, 128, 4, 2, 4
HEAD_DIM = EMBD // HEADS
EPS = 1e-6
SEQ_LEN = 24


def rand(rng, *shape, scale):
    # Matrices are stored as F16 (small files); HF gets the same f16-rounded values in f32.
    return (rng.standard_normal(shape) * scale).astype(np.float16).astype(np.float32)


def norm_w(rng, n):
    return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)


def make_weights(rng, olmo):
    w = {"embed": rand(rng, VOCAB, EMBD, scale=1.0), "final_norm": norm_w(rng, EMBD),
         "lm_head": rand(rng, VOCAB, EMBD, scale=0.2), "layers": []}
    for _ in range(LAYERS):
        l = {"q": rand(rng, HEADS * HEAD_DIM, EMBD, scale=0.25),
             "k": rand(rng, KV_HEADS * HEAD_DIM, EMBD, scale=0.25),
             "v": rand(rng, KV_HEADS * HEAD_DIM, EMBD, scale=0.25),
             "o": rand(rng, EMBD, HEADS * HEAD_DIM, scale=0.15),
             "gate": rand(rng, FF, EMBD, scale=0.15), "up": rand(rng, FF, EMBD, scale=0.15),
             "down": rand(rng, EMBD, FF, scale=0.1)}
        if olmo:
            l.update(q_norm=norm_w(rng, HEADS * HEAD_DIM), k_norm=norm_w(rng, KV_HEADS * HEAD_DIM),
                     post_attn=norm_w(rng, EMBD), post_ffn=norm_w(rng, EMBD))
        else:
            l.update(attn_norm=norm_w(rng, EMBD), ffn_norm=norm_w(rng, EMBD))
        w["layers"].append(l)
    return w


def load_into_hf(model, w, olmo):
    sd = {"model.embed_tokens.weight": w["embed"], "model.norm.weight": w["final_norm"],
          "lm_head.weight": w["lm_head"]}
    for i, l in enumerate(w["layers"]):
        p = f"model.layers.{i}."
        sd.update({p + "self_attn.q_proj.weight": l["q"], p + "self_attn.k_proj.weight": l["k"],
                   p + "self_attn.v_proj.weight": l["v"], p + "self_attn.o_proj.weight": l["o"],
                   p + "mlp.gate_proj.weight": l["gate"], p + "mlp.up_proj.weight": l["up"],
                   p + "mlp.down_proj.weight": l["down"]})
        if olmo:
            sd.update({p + "self_attn.q_norm.weight": l["q_norm"],
                       p + "self_attn.k_norm.weight": l["k_norm"],
                       p + "post_attention_layernorm.weight": l["post_attn"],
                       p + "post_feedforward_layernorm.weight": l["post_ffn"]})
        else:
            sd.update({p + "input_layernorm.weight": l["attn_norm"],
                       p + "post_attention_layernorm.weight": l["ffn_norm"]})
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()},
                                                strict=False)
    missing = [m for m in missing if "rotary" not in m]
    assert not missing and not unexpected, (missing, unexpected)


def permute_for_interleaved(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute: HF's rotate-half rows -> llama.cpp's adjacent pairs.
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_gguf(path, arch, w, olmo, extra_kv, permute_qk=False, rope_freqs=None):
    wr = gguf.GGUFWriter(str(path), arch)
    add = wr.add_tensor
    wr.add_tensor = lambda name, t: add(name, t.astype(np.float16) if t.ndim == 2 else t)
    wr.add_name(path.stem)
    wr.add_context_length(1024)
    wr.add_embedding_length(EMBD)
    wr.add_block_count(LAYERS)
    wr.add_feed_forward_length(FF)
    wr.add_head_count(HEADS)
    wr.add_head_count_kv(KV_HEADS)
    wr.add_layer_norm_rms_eps(EPS)
    wr.add_rope_dimension_count(HEAD_DIM)
    wr.add_vocab_size(VOCAB)
    wr.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for fn, val in extra_kv:
        getattr(wr, fn)(val)
    wr.add_tensor("token_embd.weight", w["embed"])
    wr.add_tensor("output_norm.weight", w["final_norm"])
    wr.add_tensor("output.weight", w["lm_head"])
    if rope_freqs is not None:
        wr.add_tensor("rope_freqs.weight", rope_freqs)
    for i, l in enumerate(w["layers"]):
        p = f"blk.{i}."
        q, k = l["q"], l["k"]
        if permute_qk:
            q, k = permute_for_interleaved(q, HEADS), permute_for_interleaved(k, KV_HEADS)
        wr.add_tensor(p + "attn_q.weight", q)
        wr.add_tensor(p + "attn_k.weight", k)
        wr.add_tensor(p + "attn_v.weight", l["v"])
        wr.add_tensor(p + "attn_output.weight", l["o"])
        wr.add_tensor(p + "ffn_gate.weight", l["gate"])
        wr.add_tensor(p + "ffn_up.weight", l["up"])
        wr.add_tensor(p + "ffn_down.weight", l["down"])
        if olmo:
            wr.add_tensor(p + "attn_q_norm.weight", l["q_norm"])
            wr.add_tensor(p + "attn_k_norm.weight", l["k_norm"])
            wr.add_tensor(p + "post_attention_norm.weight", l["post_attn"])
            wr.add_tensor(p + "post_ffw_norm.weight", l["post_ffn"])
        else:
            wr.add_tensor(p + "attn_norm.weight", l["attn_norm"])
            wr.add_tensor(p + "ffn_norm.weight", l["ffn_norm"])
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def hf_logits(model, seqs):
    model.eval()
    with torch.no_grad():
        return np.stack([model(torch.tensor([s])).logits[0].numpy().astype(np.float32)
                         for s in seqs])


def llama3_rope_freqs(base, dim, factor, low, high, orig):
    # What convert_hf_to_gguf.py stores as rope_freqs.weight: per pair, the divisor of the freq.
    out = []
    for i in range(0, dim, 2):
        freq = 1.0 / base ** (i / dim)
        wavelen = 2 * math.pi / freq
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(20261128)
    seqs = [rng.integers(0, VOCAB, SEQ_LEN).tolist(), rng.integers(0, VOCAB, SEQ_LEN).tolist()]
    entries = []
    base_cfg = dict(vocab_size=VOCAB, hidden_size=EMBD, intermediate_size=FF,
                    num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                    num_key_value_heads=KV_HEADS, max_position_embeddings=1024, rms_norm_eps=EPS,
                    tie_word_embeddings=False, attention_bias=False, attn_implementation="eager")

    # OLMo-3 style: sliding window + YaRN on the full layer.
    theta, window, factor, orig = 10000.0, 8, 4.0, 256
    layer_types = ["sliding_attention" if (i + 1) % 4 != 0 else "full_attention"
                   for i in range(LAYERS)]
    cfg = transformers.Olmo3Config(
        **base_cfg, sliding_window=window, layer_types=layer_types,
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": theta},
            "full_attention": {"rope_type": "yarn", "rope_theta": theta, "factor": factor,
                               "original_max_position_embeddings": orig,
                               "beta_fast": 32.0, "beta_slow": 1.0}})
    w = make_weights(rng, olmo=True)
    model = transformers.Olmo3ForCausalLM(cfg)
    load_into_hf(model, w, olmo=True)
    write_gguf(OUT / "olmo3_tiny.gguf", "olmo2", w, True, [
        ("add_rope_freq_base", theta), ("add_sliding_window", window),
        ("add_sliding_window_pattern", 4),
        ("add_rope_scaling_type", gguf.RopeScalingType.YARN), ("add_rope_scaling_factor", factor),
        ("add_rope_scaling_orig_ctx_len", orig), ("add_rope_scaling_yarn_beta_fast", 32.0),
        ("add_rope_scaling_yarn_beta_slow", 1.0)])
    hf_logits(model, seqs).astype("<f4").tofile(OUT / "olmo3_tiny_logits.f32")
    entries.append({"name": "olmo3_tiny", "config": {
        "arch": "olmo2", "rope_style": "neox", "rope_base": theta, "qk_norm": True,
        "post_norms": True, "sliding_window": window,
        "layer_sliding": [t == "sliding_attention" for t in layer_types],
        "rope_scaling": "yarn", "rope_factor": factor, "rope_orig_context": orig,
        "yarn_beta_fast": 32.0, "yarn_beta_slow": 1.0, "yarn_attn_factor": 1.0}})

    # OLMo-2: no sliding window, plain rope.
    theta = 500000.0
    cfg = transformers.Olmo2Config(**base_cfg, rope_parameters={"rope_type": "default",
                                                                "rope_theta": theta})
    w = make_weights(rng, olmo=True)
    model = transformers.Olmo2ForCausalLM(cfg)
    load_into_hf(model, w, olmo=True)
    write_gguf(OUT / "olmo2_tiny.gguf", "olmo2", w, True, [("add_rope_freq_base", theta)])
    hf_logits(model, seqs).astype("<f4").tofile(OUT / "olmo2_tiny_logits.f32")
    entries.append({"name": "olmo2_tiny", "config": {
        "arch": "olmo2", "rope_style": "neox", "rope_base": theta, "qk_norm": True,
        "post_norms": True, "sliding_window": 0, "rope_scaling": "none"}})

    # Llama 3 rope scaling, GQA, interleaved rope on permuted Q/K.
    theta, factor, low, high, orig = 10000.0, 8.0, 1.0, 4.0, 32
    cfg = transformers.LlamaConfig(**base_cfg, rope_parameters={
        "rope_type": "llama3", "rope_theta": theta, "factor": factor, "low_freq_factor": low,
        "high_freq_factor": high, "original_max_position_embeddings": orig})
    w = make_weights(rng, olmo=False)
    model = transformers.LlamaForCausalLM(cfg)
    load_into_hf(model, w, olmo=False)
    freqs = llama3_rope_freqs(theta, HEAD_DIM, factor, low, high, orig)
    write_gguf(OUT / "llama3_tiny.gguf", "llama", w, False, [
        ("add_rope_freq_base", theta), ("add_rope_scaling_factor", factor),
        ("add_rope_scaling_orig_ctx_len", orig)], permute_qk=True, rope_freqs=freqs)
    hf_logits(model, seqs).astype("<f4").tofile(OUT / "llama3_tiny_logits.f32")
    entries.append({"name": "llama3_tiny", "config": {
        "arch": "llama", "rope_style": "interleaved", "rope_base": theta, "qk_norm": False,
        "post_norms": False, "sliding_window": 0, "rope_scaling": "llama3", "rope_factor": factor,
        "rope_orig_context": orig, "llama3_low_freq_factor": low,
        "llama3_high_freq_factor": high, "rope_freq_factors": [float(f) for f in freqs]}})

    golden = {"generator": f"transformers {transformers.__version__} (torch {torch.__version__}), "
                           "float32, eager attention",
              "n_vocab": VOCAB, "sequences": seqs, "models": entries}
    (OUT / "arch_golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print("wrote", [e["name"] for e in entries])


if __name__ == "__main__":
    main()
