// ModelConfig from metadata, the per-architecture tensor checklist, dummy shapes, `model info`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "flowrank/common/error.hpp"
#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/model.hpp"
#include "flowrank/engine/model_info.hpp"
#include "gguf_builder.hpp"

namespace flowrank::engine {
namespace {

using testing::GgufBuilder;
namespace fs = std::filesystem;

const std::string kSmolLM2 =
    std::string(FLOWRANK_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

// A tiny model: 2 layers, embd 64, 4 heads of 16, 2 kv heads, ff 96, vocab 40; F32 tensors.
struct TinyModel {
  std::string arch = "llama";
  int64_t embd = 64, heads = 4, kv = 2, ff = 96, vocab = 40, layers = 2;
  bool with_output = false;
  std::string skip;               // a tensor left out
  std::string reshape;            // a tensor whose last dim is one short
  std::vector<float> rope_freqs;  // llama3 factors, as the converter writes them
  std::function<void(GgufBuilder&)> extra = nullptr;

  std::string build() const {
    GgufBuilder g;
    const std::string a = arch;
    g.str("general.architecture", a).str("general.name", "tiny " + a);
    g.u32(a + ".block_count", static_cast<uint32_t>(layers));
    g.u32(a + ".context_length", 256);
    g.u32(a + ".embedding_length", static_cast<uint32_t>(embd));
    g.u32(a + ".feed_forward_length", static_cast<uint32_t>(ff));
    g.u32(a + ".attention.head_count", static_cast<uint32_t>(heads));
    g.u32(a + ".attention.head_count_kv", static_cast<uint32_t>(kv));
    g.f32(a + ".rope.freq_base", 10000.0f);
    g.f32(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
    g.u32(a + ".vocab_size", static_cast<uint32_t>(vocab));
    if (extra) extra(g);
    const int64_t hd = embd / heads;
    auto add = [&](const std::string& name, std::vector<uint64_t> dims) {
      if (name == skip) return;
      if (name == reshape) --dims.back();
      uint64_t n = 1;
      for (auto d : dims) n *= d;
      std::vector<float> v(n);
      for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 7) * 0.25f;
      g.tensor(name, 0, dims, testing::f32_bytes(v));
    };
    const auto E = static_cast<uint64_t>(embd), V = static_cast<uint64_t>(vocab),
               F = static_cast<uint64_t>(ff), Q = static_cast<uint64_t>(heads * hd),
               K = static_cast<uint64_t>(kv * hd);
    add("token_embd.weight", {E, V});
    add("output_norm.weight", {E});
    if (with_output) add("output.weight", {E, V});
    if (!rope_freqs.empty())
      g.tensor("rope_freqs.weight", 0, {rope_freqs.size()}, testing::f32_bytes(rope_freqs));
    for (int il = 0; il < layers; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      if (arch != "olmo2") add(p + "attn_norm.weight", {E});
      add(p + "attn_q.weight", {E, Q});
      add(p + "attn_k.weight", {E, K});
      add(p + "attn_v.weight", {E, K});
      add(p + "attn_output.weight", {Q, E});
      if (arch == "qwen2") {
        add(p + "attn_q.bias", {Q});
        add(p + "attn_k.bias", {K});
        add(p + "attn_v.bias", {K});
      }
      if (arch == "olmo2") {
        add(p + "attn_q_norm.weight", {Q});
        add(p + "attn_k_norm.weight", {K});
        add(p + "post_attention_norm.weight", {E});
        add(p + "post_ffw_norm.weight", {E});
      } else {
        add(p + "ffn_norm.weight", {E});
      }
      add(p + "ffn_gate.weight", {E, F});
      add(p + "ffn_up.weight", {E, F});
      add(p + "ffn_down.weight", {F, E});
    }
    return g.build();
  }
};

std::string load_error(const std::string& bytes, const std::string& name = "tiny.gguf") {
  try {
    load_model(parse_gguf_buffer(bytes, name));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Model, TinyLlamaConfigAndTensors) {
  const ModelWeights w = load_model(parse_gguf_buffer(TinyModel().build(), "tiny.gguf"));
  const ModelConfig& c = w.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.name, "tiny llama");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_ff, 96);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 16);  // no key_length: embd / heads
  EXPECT_EQ(c.n_vocab, 40);
  EXPECT_EQ(c.context_length, 256);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(c.rope_dim, 16);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kNone);
  EXPECT_TRUE(c.rope_freq_factors.empty());
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_TRUE(w.output.empty());
  EXPECT_FALSE(c.qk_norm || c.post_norms || c.qkv_bias);
  EXPECT_EQ(c.sliding_window, 0);
  ASSERT_EQ(w.layers.size(), 2u);
  EXPECT_EQ(w.layers[1].wk.dims, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(w.layers[1].wk.name, "blk.1.attn_k.weight");
  EXPECT_EQ(w.layers[1].w_down.dims, (std::vector<int64_t>{96, 64}));
  EXPECT_EQ(w.layers[0].w_down.elements(), 96 * 64);
  EXPECT_EQ(static_cast<const float*>(w.layers[0].w_down.data)[9], 0.5f);  // 9 % 7 * 0.25
  EXPECT_TRUE(w.layers[0].bq.empty());
  EXPECT_TRUE(w.layers[0].q_norm.empty());
  EXPECT_EQ(w.tok_embd.nbytes, 64u * 40 * 4);

  TinyModel untied;
  untied.with_output = true;
  const ModelWeights u = load_model(parse_gguf_buffer(untied.build(), "u.gguf"));
  EXPECT_FALSE(u.config.tied_embeddings);
  EXPECT_EQ(u.output.dims, (std::vector<int64_t>{64, 40}));
}

TEST(Model, MissingTensor) {
  TinyModel m;
  m.skip = "blk.1.ffn_up.weight";
  EXPECT_EQ(load_error(m.build()), "tiny.gguf: tensor blk.1.ffn_up.weight: missing");
}

TEST(Model, WrongShape) {
  TinyModel m;
  m.reshape = "blk.1.ffn_up.weight";
  EXPECT_EQ(load_error(m.build()),
            "tiny.gguf: tensor blk.1.ffn_up.weight: expected shape [64, 96], found [64, 95]");
  TinyModel n;
  n.reshape = "output_norm.weight";
  EXPECT_EQ(load_error(n.build()),
            "tiny.gguf: tensor output_norm.weight: expected shape [64], found [63]");
}

TEST(Model, BadMetadata) {
  TinyModel m;
  m.arch = "gpt2";
  EXPECT_EQ(load_error(m.build()),
            "tiny.gguf: metadata general.architecture: unsupported architecture \"gpt2\", "
            "expected llama, olmo2 or qwen2");
  TinyModel h;
  h.kv = 3;
  EXPECT_EQ(load_error(h.build()),
            "tiny.gguf: metadata llama.attention.head_count_kv: 3 does not divide head_count 4");
  TinyModel s;
  s.extra = [](GgufBuilder& g) { g.str("llama.rope.scaling.type", "longrope"); };
  const std::string msg = load_error(s.build());
  EXPECT_EQ(msg.rfind("tiny.gguf: metadata llama.rope.scaling.type: unsupported \"longrope\"", 0),
            0u)
      << msg;
  // A required key missing: build by hand without block_count.
  const std::string nokey = GgufBuilder().str("general.architecture", "llama").build();
  EXPECT_EQ(load_error(nokey), "tiny.gguf: metadata llama.block_count: missing");
}

TEST(Model, Llama3RopeFreqsTensor) {
  TinyModel m;
  m.rope_freqs = {1.0f, 1.0f, 1.5f, 2.0f, 4.0f, 8.0f, 8.0f, 8.0f};  // rope_dim 16 -> 8 pairs
  const ModelConfig c = load_model(parse_gguf_buffer(m.build(), "l3.gguf")).config;
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c.rope_freq_factors, m.rope_freqs);
  EXPECT_EQ(c.rope_factor, 8.0f);
  TinyModel bad;
  bad.rope_freqs = {1.0f, 2.0f};
  EXPECT_EQ(load_error(bad.build()),
            "tiny.gguf: tensor rope_freqs.weight: expected F32 shape [8], found F32 [2]");
}

TEST(Model, Qwen2BiasesAndNeox) {
  TinyModel m;
  m.arch = "qwen2";
  m.with_output = true;
  const ModelWeights w = load_model(parse_gguf_buffer(m.build(), "q.gguf"));
  EXPECT_TRUE(w.config.qkv_bias);
  EXPECT_EQ(w.config.rope_style, RopeStyle::kNeox);
  EXPECT_EQ(w.layers[1].bk.dims, (std::vector<int64_t>{32}));
  EXPECT_EQ(w.layers[1].bq.dims, (std::vector<int64_t>{64}));
  m.skip = "blk.0.attn_v.bias";
  EXPECT_EQ(load_error(m.build()), "tiny.gguf: tensor blk.0.attn_v.bias: missing");
}

TinyModel olmo(int layers) {
  TinyModel m;
  m.arch = "olmo2";
  m.layers = layers;
  m.kv = 4;
  m.with_output = true;
  return m;
}

TEST(Model, Olmo2PostNormsQkNormNoSlidingWindow) {
  const ModelWeights w = load_model(parse_gguf_buffer(olmo(2).build(), "o2.gguf"));
  const ModelConfig& c = w.config;
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.post_norms);
  EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.layer_sliding, (std::vector<bool>{false, false}));
  EXPECT_EQ(w.layers[0].q_norm.dims, (std::vector<int64_t>{64}));
  EXPECT_EQ(w.layers[0].k_norm.dims, (std::vector<int64_t>{64}));
  EXPECT_FALSE(w.layers[0].post_attn_norm.empty());
  EXPECT_FALSE(w.layers[0].post_ffn_norm.empty());
  EXPECT_TRUE(w.layers[0].attn_norm.empty());
  EXPECT_TRUE(w.layers[0].ffn_norm.empty());
}

// OLMo-3 as llama.cpp's converter writes it: sliding_window + a per-layer bool pattern
// (layer_types == "sliding_attention"), YaRN keys from HF rope_scaling.
TEST(Model, Olmo3SlidingPatternAndYarn) {
  TinyModel m = olmo(8);
  m.extra = [](GgufBuilder& g) {
    g.u32("olmo2.attention.sliding_window", 4096);
    g.bool_array("olmo2.attention.sliding_window_pattern",
                 {true, true, true, false, true, true, true, false});
    g.str("olmo2.rope.scaling.type", "yarn");
    g.f32("olmo2.rope.scaling.factor", 8.0f);
    g.u32("olmo2.rope.scaling.original_context_length", 8192);
    g.f32("olmo2.rope.scaling.yarn_attn_factor", 1.2079441541679836f);
    g.f32("olmo2.rope.scaling.yarn_beta_fast", 32.0f);
    g.f32("olmo2.rope.scaling.yarn_beta_slow", 1.0f);
  };
  const ModelConfig c = load_model(parse_gguf_buffer(m.build(), "o3.gguf")).config;
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.layer_sliding, (std::vector<bool>{true, true, true, false, true, true, true, false}));
  EXPECT_EQ(c.rope_scaling, RopeScaling::kYarn);
  EXPECT_EQ(c.rope_factor, 8.0f);
  EXPECT_EQ(c.rope_orig_context, 8192);
  EXPECT_EQ(c.yarn_beta_fast, 32.0f);
  EXPECT_EQ(c.yarn_beta_slow, 1.0f);
  EXPECT_NEAR(c.yarn_attn_factor, 1.0f, 1e-6f);  // 1.2079 total = 1 + 0.1 ln 8

  // A period instead of an array, and no pattern at all (llama.cpp's default period 4).
  TinyModel p = olmo(6);
  p.extra = [](GgufBuilder& g) {
    g.u32("olmo2.attention.sliding_window", 128);
    g.u32("olmo2.attention.sliding_window_pattern", 3);
  };
  EXPECT_EQ(load_model(parse_gguf_buffer(p.build(), "p.gguf")).config.layer_sliding,
            (std::vector<bool>{true, true, false, true, true, false}));
  TinyModel d = olmo(5);
  d.extra = [](GgufBuilder& g) { g.u32("olmo2.attention.sliding_window", 128); };
  EXPECT_EQ(load_model(parse_gguf_buffer(d.build(), "d.gguf")).config.layer_sliding,
            (std::vector<bool>{true, true, true, false, true}));
  TinyModel bad = olmo(3);
  bad.extra = [](GgufBuilder& g) {
    g.u32("olmo2.attention.sliding_window", 128);
    g.bool_array("olmo2.attention.sliding_window_pattern", {true, false});
  };
  EXPECT_EQ(load_error(bad.build()),
            "tiny.gguf: metadata olmo2.attention.sliding_window_pattern: expected 3 entries "
            "(one per layer), found 2");
}

TEST(Model, BundledSmolLM2) {
  if (!fs::exists(kSmolLM2)) GTEST_SKIP() << kSmolLM2 << " not present";
  const ModelWeights w = load_model(kSmolLM2);
  const ModelConfig& c = w.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_ff, 1536);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_vocab, 49152);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(c.rope_base, 100000.0f);
  EXPECT_EQ(c.rope_dim, 64);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kNone);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(w.tok_embd.type, TensorType::kQ8_0);
  EXPECT_EQ(w.tok_embd.dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(w.layers[29].wq.type, TensorType::kQ4_1);
  EXPECT_EQ(w.layers[29].wk.dims, (std::vector<int64_t>{576, 192}));
  EXPECT_EQ(w.layers[0].attn_norm.type, TensorType::kF32);
  EXPECT_EQ(w.file->tensors().size(), 272u);

  // Row 0 of blk.0.attn_q.weight and row 5 of token_embd.weight, dequantized by the gguf
  // package (tools/golden/make_quant_golden.py): checks the data offsets as well as the formats.
  const std::string dir = std::string(FLOWRANK_SOURCE_DIR) + "/tests/data/quant/";
  for (const auto& [file, tensor, row] :
       {std::tuple{"smollm2_attn_q_row0.f32", &w.layers[0].wq, 0},
        std::tuple{"smollm2_token_embd_row5.f32", &w.tok_embd, 5}}) {
    std::ifstream in(dir + file, std::ios::binary);
    const std::string want((std::istreambuf_iterator<char>(in)), {});
    ASSERT_EQ(want.size(), 576u * 4) << file;
    std::vector<float> got(576);
    const auto* base = static_cast<const unsigned char*>(tensor->data);
    dequantize(tensor->type, base + tensor_bytes(tensor->type, 576) * row, got.data(), 576);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size()), 0) << file;
  }
}

TEST(Model, DummyShapesUsePublishedNumbers) {
  EXPECT_EQ(dummy_model_shapes(),
            (std::vector<std::string>{"smollm2-135m", "llama3-1b", "llama3-8b", "olmo3-7b",
                                      "llama3-mini", "olmo3-mini"}));
  const ModelConfig o = dummy_model_config("olmo3-7b");
  EXPECT_EQ(o.arch, "olmo2");
  EXPECT_EQ(o.n_layer, 32);
  EXPECT_EQ(o.n_embd, 4096);
  EXPECT_EQ(o.n_ff, 11008);
  EXPECT_EQ(o.n_head, 32);
  EXPECT_EQ(o.n_head_kv, 32);
  EXPECT_EQ(o.head_dim, 128);
  EXPECT_EQ(o.n_vocab, 100278);
  EXPECT_EQ(o.context_length, 65536);
  EXPECT_EQ(o.rope_base, 500000.0f);
  EXPECT_EQ(o.rope_style, RopeStyle::kNeox);
  EXPECT_EQ(o.rope_scaling, RopeScaling::kYarn);
  EXPECT_EQ(o.rope_factor, 8.0f);
  EXPECT_EQ(o.rope_orig_context, 8192);
  EXPECT_EQ(o.sliding_window, 4096);
  ASSERT_EQ(o.layer_sliding.size(), 32u);
  for (int il = 0; il < 32; ++il) EXPECT_EQ(o.layer_sliding[il], il % 4 != 3) << il;
  EXPECT_TRUE(o.qk_norm && o.post_norms && !o.tied_embeddings);

  const ModelConfig l8 = dummy_model_config("llama3-8b");
  EXPECT_EQ(l8.n_layer, 32);
  EXPECT_EQ(l8.n_ff, 14336);
  EXPECT_EQ(l8.n_head_kv, 8);
  EXPECT_EQ(l8.n_vocab, 128256);
  EXPECT_EQ(l8.rope_scaling, RopeScaling::kLlama3);
  ASSERT_EQ(l8.rope_freq_factors.size(), 64u);
  // Hand-worked: pair 32 has freq 500000^-0.5, wavelength 4442.9 between 8192/4 and 8192/1;
  // smooth = (8192/4442.9 - 1)/3 = 0.28127, factor = 1/((1-smooth)/8 + smooth) = 2.6945.
  EXPECT_NEAR(l8.rope_freq_factors[32], 2.69453f, 1e-4f);
  EXPECT_EQ(l8.rope_freq_factors[0], 1.0f);
  EXPECT_EQ(l8.rope_freq_factors[28], 1.0f);
  EXPECT_EQ(l8.rope_freq_factors[35], 8.0f);
  EXPECT_EQ(l8.rope_freq_factors[63], 8.0f);

  const ModelConfig l1 = dummy_model_config("llama3-1b");
  EXPECT_EQ(l1.n_layer, 16);
  EXPECT_EQ(l1.n_embd, 2048);
  EXPECT_EQ(l1.head_dim, 64);
  EXPECT_TRUE(l1.tied_embeddings);
  EXPECT_EQ(l1.rope_freq_factors.back(), 32.0f);

  try {
    dummy_model_config("gpt-5");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "dummy:gpt-5: unknown dummy shape, known: smollm2-135m, llama3-1b, "
                 "llama3-8b, olmo3-7b, llama3-mini, olmo3-mini");
  }
  EXPECT_THROW(load_model("dummy:nope"), InputError);
}

float half_value(const Tensor& t, int64_t i) {
  uint16_t h;
  std::memcpy(&h, static_cast<const unsigned char*>(t.data) + 2 * i, 2);
  float f;
  dequantize(TensorType::kF16, &h, &f, 1);
  return f;
}

TEST(Model, DummySmolLM2Weights) {
  const ModelWeights w = load_model("dummy:smollm2-135m", 7);
  EXPECT_EQ(w.source, "dummy:smollm2-135m");
  EXPECT_EQ(w.config.n_layer, 30);
  EXPECT_TRUE(w.config.tied_embeddings);
  EXPECT_TRUE(w.output.empty());
  ASSERT_EQ(w.layers.size(), 30u);
  const Tensor& q = w.layers[3].wq;
  EXPECT_EQ(q.type, TensorType::kF16);
  EXPECT_EQ(q.dims, (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(q.nbytes, 576u * 576 * 2);
  EXPECT_EQ(w.layers[3].attn_norm.dims, (std::vector<int64_t>{576}));
  for (int64_t i = 0; i < 576; ++i) ASSERT_EQ(half_value(w.layers[3].attn_norm, i), 1.0f);
  // Random weights: mean ~0, standard deviation ~0.02.
  double sum = 0, sq = 0;
  const int64_t n = q.elements();
  for (int64_t i = 0; i < n; ++i) {
    const double v = half_value(q, i);
    sum += v;
    sq += v * v;
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sd, 0.02, 0.001);
  // Different tensors differ; the same seed repeats; another seed differs.
  EXPECT_NE(std::memcmp(w.layers[3].wq.data, w.layers[4].wq.data, 1024), 0);
  const ModelWeights again = load_model("dummy:smollm2-135m", 7);
  EXPECT_EQ(std::memcmp(again.layers[3].wq.data, q.data, q.nbytes), 0);
  const ModelWeights other = load_model("dummy:smollm2-135m", 8);
  EXPECT_NE(std::memcmp(other.layers[3].wq.data, q.data, 1024), 0);
}

TEST(Model, DummyTensorsWithoutDataCarryTheirGenerator) {
  // A GPU backend generates dummy weights on the device from each tensor's key: the keys (and
  // the generator, fill_dummy_f16) must reproduce exactly what load_model generates on the host.
  const ModelWeights full = load_model("dummy:smollm2-135m", 7);
  const ModelWeights lazy = load_model("dummy:smollm2-135m", 7, /*generate_dummy=*/false);
  ASSERT_EQ(lazy.layers.size(), full.layers.size());
  EXPECT_TRUE(lazy.owned.empty());
  for (const auto* pair : {&lazy.layers[5].w_down, &lazy.layers[0].attn_norm, &lazy.tok_embd}) {
    const Tensor& t = *pair;
    EXPECT_TRUE(t.dummy);
    EXPECT_EQ(t.data, nullptr);
    EXPECT_FALSE(t.empty());
  }
  const auto same = [](const Tensor& lazy_t, const Tensor& full_t, int64_t begin, int64_t end) {
    std::vector<uint16_t> out(static_cast<std::size_t>(end));
    fill_dummy_f16(lazy_t, out.data(), begin, end);
    return std::memcmp(out.data() + begin, static_cast<const uint16_t*>(full_t.data) + begin,
                       static_cast<std::size_t>(end - begin) * 2) == 0;
  };
  // Unaligned ranges too: element i depends on i alone.
  EXPECT_TRUE(same(lazy.layers[5].w_down, full.layers[5].w_down, 3, 4099));
  EXPECT_TRUE(same(lazy.layers[0].attn_norm, full.layers[0].attn_norm, 0, 576));
  EXPECT_TRUE(same(lazy.tok_embd, full.tok_embd, 1000, 2001));
}

TEST(ModelInfo, DescribesBundledModel) {
  if (!fs::exists(kSmolLM2)) GTEST_SKIP() << kSmolLM2 << " not present";
  const std::string d = describe_model(kSmolLM2);
  for (const char* want :
       {"arch: llama\n", "layers: 30  embd: 576  ff: 1536  heads: 9  kv_heads: 3  head_dim: 64\n",
        "vocab: 49152  context: 8192", "rope: interleaved  dims: 64  base: 100000  scaling: none\n",
        "tied-embeddings", "tensors: 272 (F32 61, Q4_1 210, Q8_0 1)",
        "tokenizer: gpt2  pre: smollm  vocab: 49152  merges: 48900\n",
        "chat template: present (chatml", "sliding window: none\n"}) {
    EXPECT_NE(d.find(want), std::string::npos) << "missing \"" << want << "\" in:\n" << d;
  }
}

TEST(ModelInfo, DescribesDummyWithoutGenerating) {
  const std::string d = describe_model("dummy:olmo3-7b");
  for (const char* want :
       {"arch: olmo2\n", "layers: 32  embd: 4096  ff: 11008  heads: 32  kv_heads: 32",
        "vocab: 100278  context: 65536", "scaling: yarn (factor 8, original context 8192",
        "qk-norm post-norms",
        "sliding window: 4096 on 24 of 32 layers (full attention: "
        "3,7,11,15,19,23,27,31)",
        "tensors: 355 (F16 355)"}) {
    EXPECT_NE(d.find(want), std::string::npos) << "missing \"" << want << "\" in:\n" << d;
  }
  try {
    describe_model(std::string(FLOWRANK_SOURCE_DIR) + "/no/such.gguf");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              std::string(FLOWRANK_SOURCE_DIR) + "/no/such.gguf: no such file");
  }
}

}  // namespace
}  // namespace flowrank::engine
