#include "flowrank/engine/model_info.hpp"

#include <cstdio>
#include <map>
#include <sstream>

#include "flowrank/engine/gguf.hpp"
#include "flowrank/engine/model.hpp"
#include "model_internal.hpp"

namespace flowrank::engine {

namespace {

std::string bytes_text(uint64_t n) {
  char buf[64];
  if (n >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(n) / (1 << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  }
  return std::to_string(n) + " bytes (" + buf + ")";
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void describe_config(std::ostringstream& o, const ModelConfig& c) {
  o << "arch: " << c.arch << "\n";
  o << "name: " << (c.name.empty() ? "(none)" : c.name) << "\n";
  o << "layers: " << c.n_layer << "  embd: " << c.n_embd << "  ff: " << c.n_ff
    << "  heads: " << c.n_head << "  kv_heads: " << c.n_head_kv << "  head_dim: " << c.head_dim
    << "\n";
  o << "vocab: " << c.n_vocab << "  context: " << c.context_length
    << "  rms_eps: " << num(c.rms_eps) << "\n";
  o << "rope: " << (c.rope_style == RopeStyle::kNeox ? "neox" : "interleaved")
    << "  dims: " << c.rope_dim << "  base: " << num(c.rope_base) << "  scaling: ";
  switch (c.rope_scaling) {
    case RopeScaling::kNone:
      o << "none";
      break;
    case RopeScaling::kLlama3:
      o << "llama3 (factor " << num(c.rope_factor);
      if (c.rope_orig_context > 0) o << ", original context " << c.rope_orig_context;
      o << ", " << c.rope_freq_factors.size() << " frequency factors)";
      break;
    case RopeScaling::kYarn:
      o << "yarn (factor " << num(c.rope_factor) << ", original context " << c.rope_orig_context
        << ", beta_fast " << num(c.yarn_beta_fast) << ", beta_slow " << num(c.yarn_beta_slow)
        << ", attn_factor " << num(c.yarn_attn_factor) << ")";
      break;
  }
  o << "\n";
  std::string features;
  if (c.qkv_bias) features += " qkv-bias";
  if (c.qk_norm) features += " qk-norm";
  if (c.post_norms) features += " post-norms";
  if (c.tied_embeddings) features += " tied-embeddings";
  o << "features:" << (features.empty() ? " none" : features) << "\n";
  if (c.sliding_window > 0) {
    int sliding = 0;
    std::string full;
    for (std::size_t i = 0; i < c.layer_sliding.size(); ++i) {
      if (c.layer_sliding[i]) {
        ++sliding;
      } else {
        full += (full.empty() ? "" : ",") + std::to_string(i);
      }
    }
    o << "sliding window: " << c.sliding_window << " on " << sliding << " of " << c.n_layer
      << " layers (full attention: " << (full.empty() ? "none" : full) << ")\n";
  } else {
    o << "sliding window: none\n";
  }
}

std::string template_kind(const std::string& t) {
  if (t.find("<|im_start|>") != std::string::npos) return "chatml";
  if (t.find("<|start_header_id|>") != std::string::npos) return "llama3";
  return "other";
}

}  // namespace

std::string describe_model(const std::string& spec) {
  std::ostringstream o;
  if (spec.rfind("dummy:", 0) == 0) {
    const ModelConfig c = dummy_model_config(spec.substr(6));
    o << "source: " << spec << " (random F16 weights)\n";
    describe_config(o, c);
    uint64_t total = 0;
    const auto tensors = dummy_tensor_list(c);
    for (const auto& t : tensors) {
      uint64_t n = 1;
      for (int64_t d : t.dims) n *= static_cast<uint64_t>(d);
      total += 2 * n;
    }
    o << "tensors: " << tensors.size() << " (F16 " << tensors.size() << ")  total "
      << bytes_text(total) << "\n";
    o << "tokenizer: none\n";
    o << "chat template: absent\n";
    return o.str();
  }

  const ModelWeights w = load_model(GgufFile::open(spec));
  const GgufFile& f = *w.file;
  o << "source: " << spec << " (GGUF v" << f.version() << ", " << f.metadata().size()
    << " metadata keys, alignment " << f.alignment() << ")\n";
  describe_config(o, w.config);
  std::map<std::string, int> per_type;
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    ++per_type[tensor_type_name(t.type)];
    total += t.nbytes;
  }
  o << "tensors: " << f.tensors().size() << " (";
  bool first = true;
  for (const auto& [name, count] : per_type) {
    o << (first ? "" : ", ") << name << " " << count;
    first = false;
  }
  o << ")  total " << bytes_text(total) << "\n";

  const auto model = f.find_string("tokenizer.ggml.model");
  if (model) {
    o << "tokenizer: " << *model
      << "  pre: " << f.find_string("tokenizer.ggml.pre").value_or("(none)");
    if (f.has("tokenizer.ggml.tokens")) {
      o << "  vocab: " << f.get_array("tokenizer.ggml.tokens").size();
    }
    if (f.has("tokenizer.ggml.merges")) {
      o << "  merges: " << f.get_array("tokenizer.ggml.merges").size();
    }
    o << "\n";
  } else {
    o << "tokenizer: none\n";
  }
  if (auto t = f.find_string("tokenizer.chat_template")) {
    o << "chat template: present (" << template_kind(*t) << ", " << t->size() << " bytes)\n";
  } else {
    o << "chat template: absent\n";
  }
  return o.str();
}

}  // namespace flowrank::engine
