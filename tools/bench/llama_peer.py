#!/usr/bin/env python3
"""llama.cpp on the CPU workloads of `flowrank bench`, through llama-cpp-python's low-level API:
the peer tools/bench/run measures side by side with flowrank on the same cores.

  llama_peer.py MODEL.gguf [--threads N] [-p 512] [-n 64] [-b 1,16] [-c 16]
      prints JSON: {"model", "system", "results": [{"test", "batch", "tokens_per_s"}, ...]}
  llama_peer.py --make-f32 SRC.gguf DST.gguf
      DST: SRC with every tensor dequantized to F32 (the gguf package's dequantizer)

The tests mirror flowrank bench: ppP = one batch of P prompt tokens per sequence (B sequences,
logits of each last token), wall time of the llama_decode calls; tgN = B sequences of a C-token
prompt (not timed), then N-1 greedy steps of one token per sequence, rate = B*(N-1) / their
time (flowrank's decode rate counts the tokens after the first, from the first to the last).
llama.cpp keeps its defaults otherwise (f16 KV cache, its own choice of flash attention).
"""
import argparse
import json
import pathlib
import sys
import time


def write_f32_copy(src, dst):
    """Writes src as a GGUF whose tensors are all F32 (dequantized), atomically."""
    import gguf
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize

    r = GGUFReader(str(src))
    tmp = pathlib.Path(str(dst) + ".tmp")
    w = GGUFWriter(str(tmp), "llama")
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        value = field.contents()
        if key == "general.file_type":
            value = int(gguf.LlamaFileType.ALL_F32)
        if vtype == GGUFValueType.ARRAY:
            w.add_key_value(key, value, vtype, sub_type=field.types[1])
        else:
            w.add_key_value(key, value, vtype)
    for t in r.tensors:
        data = dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, data.reshape([int(d) for d in reversed(t.shape)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(dst)


class Peer:
    def __init__(self, path, threads, n_ctx, n_seq):
        import llama_cpp as L

        self.L = L
        L.llama_backend_init()
        self.quiet = L.llama_log_callback(lambda level, text, data: None)  # kept alive
        L.llama_log_set(self.quiet, None)
        self.model = L.llama_model_load_from_file(str(path).encode(), L.llama_model_default_params())
        if not self.model:
            sys.exit(f"llama_peer: {path}: llama.cpp cannot load it")
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = 512
        cp.n_seq_max = n_seq
        cp.kv_unified = True  # one KV buffer: a single sequence may use all of n_ctx
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = L.llama_init_from_model(self.model, cp)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(512, 0, n_seq)

    def clear(self):
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)

    def decode(self, entries):
        """entries: (token, pos, seq, want_logits); returns the seconds llama_decode took."""
        b = self.batch
        b.n_tokens = len(entries)
        for i, (tok, pos, seq, logits) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, logits
            b.seq_id[i][0] = seq
        t = time.perf_counter()
        if self.L.llama_decode(self.ctx, b) != 0:
            sys.exit("llama_peer: llama_decode failed")
        return time.perf_counter() - t

    def argmax(self, i):
        import numpy as np

        row = self.L.llama_get_logits_ith(self.ctx, i)
        return int(np.ctypeslib.as_array(row, shape=(self.n_vocab,)).argmax())


def prompt(n, salt):
    x = 0x9E3779B97F4A7C15 * (salt + 1) & (2**64 - 1)
    out = []
    for _ in range(n):
        x ^= (x << 13) & (2**64 - 1)
        x ^= x >> 7
        x ^= (x << 17) & (2**64 - 1)
        out.append(100 + x % 40000)
    return out


def prefill(peer, tokens, batch):
    seconds = 0.0
    for s in range(batch):
        peer.clear()
        ids = prompt(tokens, s)
        for at in range(0, tokens, 512):
            chunk = ids[at:at + 512]
            seconds += peer.decode([(t, at + i, 0, at + i == tokens - 1)
                                    for i, t in enumerate(chunk)])
    return batch * tokens / seconds


def decode(peer, gen, batch, context):
    peer.clear()
    entries = []
    for s in range(batch):
        entries += [(t, i, s, i == context - 1) for i, t in enumerate(prompt(context, 100 + s))]
    peer.decode(entries)
    nxt = [peer.argmax(s * context + context - 1) for s in range(batch)]
    seconds = 0.0
    for step in range(gen - 1):
        seconds += peer.decode([(nxt[s], context + step, s, True) for s in range(batch)])
        nxt = [peer.argmax(s) for s in range(batch)]
    return batch * (gen - 1) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--make-f32", nargs=2, metavar=("SRC", "DST"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-b", default="1,16")
    ap.add_argument("-c", type=int, default=16)
    a = ap.parse_args()
    if a.make_f32:
        write_f32_copy(*a.make_f32)
        return
    batches = [int(b) for b in a.b.split(",")]
    peer = Peer(a.model, a.threads, max(a.p, max(batches) * (a.c + a.n)) + 64, max(batches))
    peer.decode([(t, i, 0, i == 15) for i, t in enumerate(prompt(16, 999))])  # warm-up
    results = []
    for b in batches:
        if a.p > 0 and b == 1:
            results.append({"test": f"pp{a.p}", "batch": b, "tokens_per_s": prefill(peer, a.p, b)})
        if a.n > 1:
            results.append({"test": f"tg{a.n}", "batch": b,
                            "tokens_per_s": decode(peer, a.n, b, a.c)})
    system = peer.L.llama_print_system_info().decode().strip()
    print(json.dumps({"model": str(a.model), "system": system, "results": results}))


if __name__ == "__main__":
    main()
