#!/opt/golden-venv/bin/python
"""Writes tests/data/quant/<TYPE>.blocks (raw ggml blocks) and <TYPE>.f32 (little-endian float32
dequantized by the gguf package's reference numpy code) for random blocks of every tensor type the
model layer reads. Scale fields are random finite halves so that no NaN/Inf appears. Not run in CI:
rerun by hand after changing the set of types, then commit the output."""
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "quant"
# type -> (block bytes, block elements, byte offsets of f16 scale fields)
TYPES = {
    T.F16: (2, 1, []),
    T.BF16: (2, 1, []),
    T.Q8_0: (34, 32, [0]),
    T.Q4_0: (18, 32, [0]),
    T.Q4_1: (20, 32, [0, 2]),
    T.Q4_K: (144, 256, [0, 2]),
    T.Q6_K: (210, 256, [208]),
}


def random_half(rng, n):
    # finite halves of both signs, spanning subnormal to ~100
    return (rng.standard_normal(n) * np.exp2(rng.integers(-16, 7, n))).astype(np.float16)


def main():
    rng = np.random.default_rng(20260128)
    OUT.mkdir(parents=True, exist_ok=True)
    for qtype, (bb, be, scale_offsets) in TYPES.items():
        n_blocks = 8 if be > 1 else 512
        raw = rng.integers(0, 256, size=(n_blocks, bb), dtype=np.uint8)
        if qtype == T.F16:
            raw = random_half(rng, n_blocks).view(np.uint8).reshape(n_blocks, bb)
        elif qtype == T.BF16:
            f = (rng.standard_normal(n_blocks) * 3).astype(np.float32)
            raw = (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(n_blocks, bb)
        for off in scale_offsets:
            raw[:, off:off + 2] = random_half(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
        flat = raw.reshape(-1)
        expected = dequantize(flat, qtype).astype(np.float32).reshape(-1)
        assert expected.size == n_blocks * be, (qtype, expected.size)
        assert np.all(np.isfinite(expected)), qtype
        (OUT / f"{qtype.name}.blocks").write_bytes(flat.tobytes())
        (OUT / f"{qtype.name}.f32").write_bytes(expected.astype("<f4").tobytes())
        print(qtype.name, n_blocks, "blocks", expected.size, "values")


def smollm2_rows():
    """Rows of the bundled model's tensors, to check the reader's data offsets end to end."""
    from gguf import GGUFReader
    path = OUT.parents[2] / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        print("skipping SmolLM2 rows:", path, "absent")
        return
    tensors = {t.name: t for t in GGUFReader(path).tensors}
    for out, name, row in [("smollm2_attn_q_row0.f32", "blk.0.attn_q.weight", 0),
                           ("smollm2_token_embd_row5.f32", "token_embd.weight", 5)]:
        t = tensors[name]
        values = dequantize(np.asarray(t.data[row]), t.tensor_type).astype("<f4").reshape(-1)
        assert values.size == 576, values.size
        (OUT / out).write_bytes(values.tobytes())
        print(out, t.tensor_type.name)


if __name__ == "__main__":
    main()
    smollm2_rows()
