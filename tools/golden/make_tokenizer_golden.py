#!/usr/bin/env python3
"""Golden token ids for flowrank's tokenizer tests, from an independent implementation.

Tokenizes a corpus (code, prose, Unicode, emoji, digit runs, whitespace runs, special tokens in
text) and every file of the fixture codebase with llama.cpp (through llama-cpp-python, vocabulary
only) using the bundled SmolLM2 GGUF, and renders chat templates with jinja2 the way Hugging Face's
apply_chat_template does. Writes tests/data/tokenizer/smollm2_golden.json.

Run from anywhere:  /opt/golden-venv/bin/python tools/golden/make_tokenizer_golden.py
"""
import ctypes
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import jinja2
import jinja2.sandbox
import llama_cpp
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
FIXTURES = ROOT / "fixtures" / "helpdesk"
OUT = ROOT / "tests" / "data" / "tokenizer" / "smollm2_golden.json"

CORPUS = {
    "code_python": (
        "import os\n\n\nclass TicketStore:\n    \"\"\"Keeps tickets in memory.\"\"\"\n\n"
        "    def __init__(self, path: str = 'data.db') -> None:\n        self._items = {}\n"
        "\tself.path = os.path.join(path, \"x\")  # don't do this\n\n"
        "    def get(self, key):\n        return self._items.get(key, None) or [1, 2, 3]\n"
        "\n\nif __name__ == \"__main__\":\n    print(f\"{len(sys.argv)=} it's {0x1F:#x}\")\n"
    ),
    "code_cpp": (
        "template <typename T>\nstd::vector<T> f(const std::map<int, T>& m) {\n"
        "  std::vector<T> out;  // keep order\n  for (auto& [k, v] : m) out.push_back(v);\n"
        "  std::cout << \"n=\" << out.size() << '\\n';\n  return out;\n}\n#define X(a) a##_t\n"
        "int main(){return a->b!=c&&d<=e||f>>=2;}\n"
    ),
    "prose_english": (
        "The quick brown fox jumps over the lazy dog. It's a truth universally acknowledged "
        "that we'll need more tests; they're cheap, I'm sure, and you've seen why. He'd agree. "
        "DON'T SHOUT, WE'LL HEAR YOU! \"Quoted,\" she said -- then (parenthetically) left... "
        "Mr. O'Neil paid $4.50 (i.e. 50% off) at 3:15pm; e-mail: ops@example.com."
    ),
    "unicode_accents": "Café naïve résumé façade Ångström Zürich São Paulo Dvořák Łódź Ærøskøbing ß İstanbul",
    "unicode_combining": "e\u0301te\u0301 cafe\u0301 n\u0303 o\u0308\u0304 Z\u0351\u036b\u0343a\u0310\u0314l\u0357g\u0305o\u0334 \u0301alone",
    "unicode_cjk": "日本語のテキストと中文文本，还有한국어 텍스트。東京タワー（とうきょう）は３３３ｍです。",
    "unicode_scripts": "Ελληνικά κείμενο, Русский текст, العربية نص, עברית, हिन्दी पाठ, ไทย ข้อความ, ქართული",
    "emoji": "👍 🎉🎉 👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩🏽‍💻 coder, ❤️ ♥ ✔️ 🇯🇵🇫🇷 keycap 1️⃣ #️⃣ 🫠",
    "digits": (
        "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 12345678901234567890 "
        "3.14159 -42 +7 1,000,000 1_000_000 0x1F 0b1010 1e-9 2026-11-28T18:05:00Z v1.2.3 "
        "٣٤٥ ١٢٣ ²³ ½ ⅔ Ⅻ ① ５６７ a1b22c333d4444"
    ),
    "whitespace": (
        "a  b   c    d\t\te\t \tf\n\ng\n\n\nh \n i\r\nj\r\n\r\nk  \n  l\t\n\tm   \n\n    n    "
    ),
    "whitespace_only_spaces": "     ",
    "whitespace_only_newlines": "\n\n\n",
    "whitespace_leading_trailing": "   leading and trailing   ",
    "whitespace_unicode": "a\u00a0b\u2003c\u3000d\u0085e\u2028f\u2029g\u202fh\u205fi\u1680j \u00a0 k",
    # U+180E is no longer White_Space (PCRE2's \h still has it); U+0378 is unassigned, U+E000
    # private use: llama.cpp and PCRE2 must agree on all of them.
    "unicode_rare": "a\u180eb \u180e c \u0378x \ue000y \U0001fae8z \u200bq \ufeffw \u00adv x\u180e\u180e, y \u2000\u2000, z \x1c\x1c, w \u0085\u0085, u",
    "special_chatml": "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n",
    "special_inline": "abc<|endoftext|>def <|im_end|>ghi<|im_start|><|im_start|>x<|im_end|>",
    "special_partial": "<|im_start <|im_end| <im_end|> <<|im_end|>> <|endoftext|><|endoftext",
    "special_codebase_tokens": "<filename>a.py<file_sep><repo_name>r<gh_stars>5<jupyter_code>x=1<empty_output>",
    "markdown_json": (
        "# Title\n\n- item **bold** _it_ `code`\n\n```json\n{\"a\": [1, 2.5, null], \"b\": "
        "{\"c\": \"d\"}}\n```\n\n| col | col |\n|-----|-----|\n| 1 | 2 |\n\nhttps://example.com/a?b=c&d=e#f\n"
    ),
    "repeats": "a" * 300 + " " + "=" * 120 + "\n" + "!" * 40 + " " + "ab" * 100 + " " + "🎉" * 20,
    "contractions_edge": "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'x ' s rock'n'roll it''s ''",
    "single_space": " ",
    "single_newline": "\n",
    "single_char": "a",
    "empty": "",
}

CHATML_PLAIN = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)
CHATML_QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHAT_MESSAGES = [
    "Review the code below.",
    "  Leading and trailing whitespace, with\nnewlines inside.\n\n",
    "Unicode: café 日本語 👍",
    "\u3000\u00a0\x1c wide spaces around\u2003\u0085 ",
]


def ids_sha256(ids):
    return hashlib.sha256(",".join(str(i) for i in ids).encode()).hexdigest()


def piece(llm, token, special):
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, 256, 0, special)
    assert 0 <= n <= 256, n
    return buf.raw[:n]


def detokenize(llm, ids, special):
    # Concatenated pieces, with no BOS or leading-space handling (none apply to this model).
    return b"".join(piece(llm, t, special) for t in ids)


# Other tokenizer.ggml.pre values, checked with SmolLM2's vocabulary and merges: llama.cpp picks
# its regexes (and flags such as ignore_merges) by this key alone.
PRE_VARIANTS = ["gpt-2", "olmo", "llama-bpe", "dbrx", "default", "qwen2", "starcoder"]


def copy_with_pre(reader, pre, path):
    """A metadata-only copy of the GGUF (no tensors) with tokenizer.ggml.pre replaced."""
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    w = GGUFWriter(path, arch=arch)
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        t = f.types[0]
        if t == GGUFValueType.ARRAY:
            sub = f.types[-1]
            if sub == GGUFValueType.STRING:
                val = [bytes(f.parts[i]).decode() for i in f.data]
            else:
                val = [f.parts[i][0].item() for i in f.data]
            w.add_key_value(key, val, t, sub_type=sub)
        elif t == GGUFValueType.STRING:
            val = bytes(f.parts[f.data[0]]).decode()
            w.add_key_value(key, pre if key == "tokenizer.ggml.pre" else val, t)
        else:
            w.add_key_value(key, f.parts[f.data[0]][0].item(), t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


SPM_SIZE = 8000  # SmolLM2's first tokens, as a SentencePiece vocabulary


def spm_vocab(reader):
    """A SentencePiece-style vocabulary made from SmolLM2's first tokens: <unk> <s> </s>, the 256
    <0xXX> byte tokens, then each token whose bytes are whole UTF-8 text, with spaces as U+2581 and
    score -id (earlier merges score higher)."""
    field = reader.fields["tokenizer.ggml.tokens"]
    types = reader.fields["tokenizer.ggml.token_type"]
    byte_dec = {}
    n = 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b:
            byte_dec[chr(b)] = b
        else:
            byte_dec[chr(256 + n)] = b
            n += 1
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    ttypes = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(tokens)
    seen = set(tokens)
    for i in range(SPM_SIZE):
        if int(types.parts[types.data[i]][0]) != 1:
            continue
        text = bytes(field.parts[field.data[i]]).decode()
        try:
            piece = bytes(byte_dec[c] for c in text).decode("utf-8").replace(" ", "\u2581")
        except (KeyError, UnicodeDecodeError):
            continue
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        ttypes.append(1)
        scores.append(-float(i))
    return tokens, ttypes, scores


def write_spm_gguf(reader, path, tokens, ttypes, scores):
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    w = GGUFWriter(path, arch=arch)
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key.startswith("tokenizer.") or key == "general.architecture":
            continue
        t = f.types[0]
        if t == GGUFValueType.ARRAY:
            continue
        if t == GGUFValueType.STRING:
            w.add_key_value(key, bytes(f.parts[f.data[0]]).decode(), t)
        else:
            w.add_key_value(key, f.parts[f.data[0]][0].item(), t)
    w.add_key_value("tokenizer.ggml.model", "llama", GGUFValueType.STRING)
    w.add_key_value("tokenizer.ggml.tokens", tokens, GGUFValueType.ARRAY, sub_type=GGUFValueType.STRING)
    w.add_key_value("tokenizer.ggml.scores", scores, GGUFValueType.ARRAY, sub_type=GGUFValueType.FLOAT32)
    w.add_key_value("tokenizer.ggml.token_type", ttypes, GGUFValueType.ARRAY, sub_type=GGUFValueType.INT32)
    w.add_key_value("tokenizer.ggml.bos_token_id", 1, GGUFValueType.UINT32)
    w.add_key_value("tokenizer.ggml.eos_token_id", 2, GGUFValueType.UINT32)
    w.add_key_value("tokenizer.ggml.unknown_token_id", 0, GGUFValueType.UINT32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


def render(template, message, bos_token=""):
    # As transformers' apply_chat_template: sandboxed, trim_blocks + lstrip_blocks.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(
        messages=[{"role": "user", "content": message}], add_generation_prompt=True,
        bos_token=bos_token, eos_token="")


def main():
    reader = GGUFReader(str(MODEL))
    field = reader.fields["tokenizer.chat_template"]
    smollm_template = bytes(field.parts[field.data[0]]).decode()

    llm = Llama(model_path=str(MODEL), vocab_only=True, verbose=False)
    corpus = []
    for name, text in CORPUS.items():
        raw = text.encode()
        plain = llm.tokenize(raw, add_bos=False, special=False)
        special = llm.tokenize(raw, add_bos=False, special=True)
        corpus.append({
            "name": name,
            "text": text,
            "ids": plain,
            "ids_special": special,
            "ids_with_bos": llm.tokenize(raw, add_bos=True, special=False),
            "decode_special_hidden": detokenize(llm, special, False).decode("utf-8", "surrogateescape"),
        })
        assert detokenize(llm, plain, False) == raw, name
        assert detokenize(llm, special, True) == raw, name

    files = []
    joined_parts = []
    if FIXTURES.is_dir():
        paths = sorted((p for p in FIXTURES.rglob("*") if p.is_file()),
                       key=lambda p: p.relative_to(FIXTURES).as_posix().encode())
        for p in paths:
            rel = p.relative_to(FIXTURES).as_posix()
            data = p.read_bytes()
            ids = llm.tokenize(data, add_bos=False, special=False)
            assert detokenize(llm, ids, False) == data, rel
            files.append({"path": rel, "content_sha256": hashlib.sha256(data).hexdigest(),
                          "count": len(ids), "ids_sha256": ids_sha256(ids), "ids": ids})
            joined_parts.append(b"===== FILE: " + rel.encode() + b" =====\n" + data + b"\n")
    else:
        print(f"warning: {FIXTURES} missing; no fixture goldens", file=sys.stderr)
    joined = b"\n".join(joined_parts)
    joined_ids = llm.tokenize(joined, add_bos=False, special=False) if joined else []

    variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRE_VARIANTS:
            path = os.path.join(tmp, pre + ".gguf")
            copy_with_pre(reader, pre, path)
            v = Llama(model_path=path, vocab_only=True, verbose=False)
            vids = v.tokenize(joined, add_bos=False, special=False) if joined else []
            variants[pre] = {
                "corpus": {name: v.tokenize(text.encode(), add_bos=False, special=False)
                           for name, text in CORPUS.items()},
                "fixture_text": {"count": len(vids), "ids_sha256": ids_sha256(vids)},
            }
            del v

    tokens, ttypes, scores = spm_vocab(reader)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spm.gguf")
        write_spm_gguf(reader, path, tokens, ttypes, scores)
        spm = Llama(model_path=path, vocab_only=True, verbose=False)
        spm_corpus = {}
        for name, text in CORPUS.items():
            raw = text.encode()
            spm_corpus[name] = {
                "ids_bos": spm.tokenize(raw, add_bos=True, special=False),
                "ids_special": spm.tokenize(raw, add_bos=False, special=True),
            }
        spm_special = "</s>ab <s> c</s>"
        spm_corpus["spm_specials"] = {
            "text": spm_special,
            "ids_bos": spm.tokenize(spm_special.encode(), add_bos=True, special=False),
            "ids_special": spm.tokenize(spm_special.encode(), add_bos=False, special=True),
        }
        del spm

    chats = []
    for tname, tmpl in [("smollm2", smollm_template), ("chatml_plain", CHATML_PLAIN),
                        ("chatml_qwen2", CHATML_QWEN2), ("llama3", LLAMA3)]:
        for msg in CHAT_MESSAGES:
            chats.append({"template_name": tname, "template": tmpl, "message": msg,
                          "rendered": render(tmpl, msg)})
    smollm_chat = render(smollm_template, CHAT_MESSAGES[0])
    # llama-cpp-python's own Jinja formatter must agree with the plain jinja2 rendering.
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    fmt = Jinja2ChatFormatter(template=smollm_template, eos_token="<|im_end|>",
                              bos_token="<|im_start|>", add_generation_prompt=True)
    assert fmt(messages=[{"role": "user", "content": CHAT_MESSAGES[0]}]).prompt == smollm_chat

    out = {
        "generator": "tools/golden/make_tokenizer_golden.py",
        "implementation": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}; jinja2 {jinja2.__version__}",
        "model": MODEL.name,
        "ids_sha256": "sha256 of the ids as decimal numbers joined by ','",
        "bos": llm.token_bos(),
        "eos": llm.token_eos(),
        "vocab_size": llm.n_vocab(),
        "corpus": corpus,
        "fixture_dir": "fixtures/helpdesk",
        "fixture_files": files,
        "fixture_text": {"count": len(joined_ids), "ids_sha256": ids_sha256(joined_ids),
                         "text_sha256": hashlib.sha256(joined).hexdigest()},
        "pre_variants": variants,
        "spm": {"tokens": tokens, "token_types": ttypes, "scores": scores, "corpus": spm_corpus},
        "chat": chats,
        "chat_smollm2_ids": llm.tokenize(smollm_chat.encode(), add_bos=False, special=True),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(corpus)} corpus items, "
          f"{len(files)} fixture files, fixture text {len(joined_ids)} tokens")


if __name__ == "__main__":
    main()
