#!/usr/bin/env python3
"""Small real-weights files made from the bundled SmolLM2 GGUF (the `gguf` PyPI package).

  tools/make_test_models.py tokenizer MODEL OUT
      A tokenizer-only GGUF: general.* and tokenizer.* metadata (vocabulary, merges, special
      tokens, chat template), no tensors. Dummy models take their tokenizer from it, so a
      benchmark on dummy:olmo3-7b needs no 98 MB model file.
  tools/make_test_models.py cut MODEL N OUT
      The model cut to its first N layers: every tensor of those layers and the embedding/output
      tensors, bytes untouched (same quantization), block_count = N. Small enough to carry to a
      GPU machine, real enough that greedy tokens mean something.
"""
import sys

import gguf


def field_value(f):
    vtype = f.types[0]
    if vtype == gguf.GGUFValueType.ARRAY:
        sub = f.types[1]
        if sub == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8", "surrogateescape") for i in f.data], vtype, sub
        return [f.parts[i].tolist()[0] for i in f.data], vtype, sub
    if vtype == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8"), vtype, None
    return f.parts[f.data[0]].tolist()[0], vtype, None


def copy_metadata(reader, writer, keep, override):
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or not keep(key):
            continue
        value, vtype, sub = field_value(f)
        value = override.get(key, value)
        writer.add_key_value(key, value, vtype, sub_type=sub)


def architecture(reader):
    return field_value(reader.fields["general.architecture"])[0]


def make_tokenizer(model, out):
    r = gguf.GGUFReader(model)
    w = gguf.GGUFWriter(out, architecture(r))
    copy_metadata(r, w, lambda k: k.startswith("general.") or k.startswith("tokenizer."), {})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_cut(model, n_layers, out):
    r = gguf.GGUFReader(model)
    arch = architecture(r)
    w = gguf.GGUFWriter(out, arch)
    copy_metadata(r, w, lambda k: True, {f"{arch}.block_count": n_layers})
    for t in r.tensors:
        if t.name.startswith("blk.") and int(t.name.split(".")[1]) >= n_layers:
            continue
        w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv):
    if len(argv) == 4 and argv[1] == "tokenizer":
        make_tokenizer(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "cut":
        make_cut(argv[2], int(argv[3]), argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
