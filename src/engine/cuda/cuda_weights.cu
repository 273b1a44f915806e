#include <algorithm>
#include <cstring>
#include <string>

#include "cuda_weights.cuh"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

// One destination region of the storage and the tensors that fill it, back to back.
struct Region {
  CudaWeights::bf16** dst;
  std::vector<const Tensor*> parts;
  int64_t elements = 0;
};

std::vector<Region> regions_of(const ModelWeights& w, CudaWeights& out) {
  std::vector<Region> r;
  const auto add = [&](CudaWeights::bf16** dst, std::vector<const Tensor*> parts) {
    Region reg{dst, {}, 0};
    for (const Tensor* t : parts) {
      if (t->empty()) return;  // a slot this architecture does not have
      reg.parts.push_back(t);
      reg.elements += t->elements();
    }
    r.push_back(std::move(reg));
  };
  add(&out.tok_embd, {&w.tok_embd});
  add(&out.output_norm, {&w.output_norm});
  if (!w.config.tied_embeddings && !w.output.empty()) add(&out.output, {&w.output});
  out.layers.resize(w.layers.size());
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    CudaWeights::Layer& d = out.layers[i];
    add(&d.attn_norm, {&l.attn_norm});
    add(&d.wqkv, {&l.wq, &l.wk, &l.wv});
    add(&d.bqkv, {&l.bq, &l.bk, &l.bv});
    add(&d.q_norm, {&l.q_norm});
    add(&d.k_norm, {&l.k_norm});
    add(&d.wo, {&l.wo});
    add(&d.post_attn_norm, {&l.post_attn_norm});
    add(&d.ffn_norm, {&l.ffn_norm});
    add(&d.w_gate_up, {&l.w_gate, &l.w_up});
    add(&d.w_down, {&l.w_down});
    add(&d.post_ffn_norm, {&l.post_ffn_norm});
  }
  return r;
}

// File tensors go through one device staging buffer of the largest tensor's raw size.
void fill_from_file(const Tensor& t, CudaWeights::bf16* dst, DeviceBuffer& staging,
                    cudaStream_t stream) {
  if (staging.bytes() < t.nbytes) {
    check(cudaStreamSynchronize(stream), "weights upload");
    staging = DeviceBuffer(t.nbytes, "weight staging for " + t.name);
  }
  check(cudaMemcpyAsync(staging.as(), t.data, t.nbytes, cudaMemcpyHostToDevice, stream),
        ("upload of " + t.name).c_str());
  dequantize_bf16(t.type, staging.as(), dst, t.elements(), stream);
  // The next tensor reuses the staging buffer: its copy is ordered after this dequantize on the
  // same stream, and the host's source stays mapped, so no wait is needed.
}

}  // namespace

const CudaWeights::bf16* CudaWeights::get(int32_t layer, WeightSlot slot) const {
  if (slot == WeightSlot::kTokenEmbd) return tok_embd;
  if (slot == WeightSlot::kOutputNorm) return output_norm;
  if (slot == WeightSlot::kOutput) return output != nullptr ? output : tok_embd;
  bf16* const* w = layer_slot(layers[static_cast<std::size_t>(layer)], slot);
  return w != nullptr ? *w : nullptr;
}

DeviceBuffer dummy_table_on_device(cudaStream_t stream) {
  const std::vector<uint16_t>& table = dummy_normal_f16_table();
  DeviceBuffer d_table(table.size() * sizeof(uint16_t), "dummy weight table");
  check(
      cudaMemcpyAsync(d_table.as(), table.data(), d_table.bytes(), cudaMemcpyHostToDevice, stream),
      "upload of the dummy weight table");
  check(cudaStreamSynchronize(stream), "upload of the dummy weight table");
  return d_table;
}

CudaWeights upload_weights(const ModelWeights& weights, bool read, cudaStream_t stream) {
  CudaWeights out;
  std::vector<Region> regions = regions_of(weights, out);
  // Each region starts on a 256-byte boundary (vector loads, cuBLASLt alignment).
  std::vector<std::size_t> offsets;
  std::size_t total = 0;
  for (const Region& r : regions) {
    offsets.push_back(total);
    total += (static_cast<std::size_t>(r.elements) * 2 + 255) / 256 * 256;
  }
  out.storage = DeviceBuffer(total, "the weights of " + weights.source + " as bf16");
  for (std::size_t i = 0; i < regions.size(); ++i)
    *regions[i].dst = reinterpret_cast<CudaWeights::bf16*>(out.storage.as<char>() + offsets[i]);
  if (!read) return out;

  const DeviceBuffer d_table = dummy_table_on_device(stream);
  DeviceBuffer staging;
  for (const Region& r : regions) {
    CudaWeights::bf16* dst = *r.dst;
    for (const Tensor* t : r.parts) {
      if (t->dummy && t->data == nullptr) {
        fill_dummy_bf16(dst, t->elements(), t->dummy_key, t->dummy_ones, d_table.as<uint16_t>(),
                        stream);
      } else {
        fill_from_file(*t, dst, staging, stream);
      }
      dst += t->elements();
    }
  }
  check(cudaStreamSynchronize(stream), "weights upload");
  return out;
}

}  // namespace flowrank::engine::cuda
