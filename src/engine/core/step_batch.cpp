#include <algorithm>
#include <stdexcept>
#include <string>

#include "flowrank/engine/model_runner.hpp"

namespace flowrank::engine {

void StepBatch::clear() {
  input_ids.clear();
  positions.clear();
  slot_mapping.clear();
  query_start.assign(1, 0);
  seq_lens.clear();
  page_start.assign(1, 0);
  pages.clear();
  sample_seqs.clear();
  sampling.clear();
  copies.clear();
  return_logits = false;
  max_query_len = 0;
  max_seq_len = 0;
}

void StepBatch::add_sequence(std::span<const int32_t> tokens, int32_t start_pos,
                             std::span<const int32_t> block_table, int32_t block_size,
                             const SampleRow* sample) {
  if (query_start.empty()) query_start.push_back(0);
  if (page_start.empty()) page_start.push_back(0);
  const auto n = static_cast<int32_t>(tokens.size());
  const int32_t len = start_pos + n;
  const int32_t n_pages = (len + block_size - 1) / block_size;
  if (start_pos < 0 || static_cast<int64_t>(block_table.size()) < n_pages)
    throw std::invalid_argument("StepBatch: block table of " + std::to_string(block_table.size()) +
                                " blocks does not cover " + std::to_string(len) + " tokens");
  if (sample != nullptr && n == 0)
    throw std::invalid_argument("StepBatch: a sampled sequence needs at least one new token");
  for (int32_t i = 0; i < n; ++i) {
    const int32_t pos = start_pos + i;
    input_ids.push_back(tokens[static_cast<std::size_t>(i)]);
    positions.push_back(pos);
    slot_mapping.push_back(block_table[static_cast<std::size_t>(pos / block_size)] * block_size +
                           pos % block_size);
  }
  const int32_t seq = num_seqs();
  query_start.push_back(query_start.back() + n);
  seq_lens.push_back(len);
  pages.insert(pages.end(), block_table.begin(), block_table.begin() + n_pages);
  page_start.push_back(static_cast<int32_t>(pages.size()));
  max_query_len = std::max(max_query_len, n);
  max_seq_len = std::max(max_seq_len, len);
  if (sample != nullptr) {
    sample_seqs.push_back(seq);
    sampling.push_back(*sample);
  }
}

}  // namespace flowrank::engine
