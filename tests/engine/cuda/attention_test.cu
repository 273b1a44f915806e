// The FlashInfer attention backend against cpu::attend, the CPU reference, run in f32 on the same
// bf16-rounded q, k and v. Tolerance per element: |out - ref| <= 2e-3 + 1e-2 |ref| (bf16 output
// rounding alone is up to 2^-9 |ref|; FlashInfer also rounds the softmax weights to bf16 before
// the PV product). Outputs are poisoned with NaN before each run, so an element left unwritten
// fails. Tests that need a GPU skip cleanly without one; the table and config tests run anywhere.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "attention.cuh"
#include "attention_tables.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/engine/cpu/cpu_ops.hpp"

namespace flowrank::engine::cuda {
namespace {

using bf16 = __nv_bfloat16;

bool have_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
}

#define REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device"

void cuda_ok(cudaError_t err, const char* what) {
  ASSERT_EQ(err, cudaSuccess) << what << ": " << cudaGetErrorString(err);
}

// Device memory for a test, freed at scope exit.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n) {
    cuda_ok(cudaMalloc(&ptr_, n * sizeof(T)), "malloc");
  }
  ~DeviceArray() { (void)cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  void upload(const std::vector<T>& v) {
    cuda_ok(cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    cuda_ok(cudaMemcpy(v.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return v;
  }

 private:
  T* ptr_ = nullptr;
  std::size_t n_;
};

struct Shape {
  const char* name;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t head_dim;
  int32_t group() const { return n_head / n_head_kv; }
  int32_t q_row_stride() const { return (n_head + 2 * n_head_kv) * head_dim; }  // a qkv row
};

void PrintTo(const Shape& shape, std::ostream* os) {
  *os << shape.name;
}

constexpr Shape kSmolLm2{"SmolLM2_hd64_group3", 9, 3, 64};
constexpr Shape kLlama3{"Llama3_hd128_group4", 32, 8, 128};
constexpr Shape kOlmo3{"Olmo3_hd128_group1", 32, 32, 128};

// Random bf16 values in [-1, 1], kept both as bf16 (for the GPU) and as their f32 values.
struct Values {
  std::vector<bf16> raw;
  std::vector<float> f32;
};

Values random_values(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Values v;
  v.raw.resize(n);
  v.f32.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    v.raw[i] = __float2bfloat16(dist(rng));
    v.f32[i] = __bfloat162float(v.raw[i]);
  }
  return v;
}

// One step's tables, as StepBatch holds them.
struct Step {
  std::vector<int32_t> query_start{0};
  std::vector<int32_t> seq_lens;
  std::vector<int32_t> page_start{0};
  std::vector<int32_t> pages;

  void add(int32_t seq_len, int32_t query_len, const std::vector<int32_t>& seq_pages) {
    query_start.push_back(query_start.back() + query_len);
    seq_lens.push_back(seq_len);
    pages.insert(pages.end(), seq_pages.begin(), seq_pages.end());
    page_start.push_back(static_cast<int32_t>(pages.size()));
  }
  int32_t num_seqs() const { return static_cast<int32_t>(seq_lens.size()); }
  int32_t rows() const { return query_start.back(); }
  bool decode_only() const { return rows() == num_seqs(); }
  StepTables tables(int32_t block_size) const {
    return {num_seqs(),      block_size,        query_start.data(),
            seq_lens.data(), page_start.data(), pages.data()};
  }
  AttentionBatch batch(int32_t graph_seqs = 0) const {
    AttentionBatch b;
    b.num_seqs = num_seqs();
    b.num_tokens = rows();
    b.decode_only = decode_only();
    b.graph_seqs = graph_seqs;
    b.query_start = query_start.data();
    b.seq_lens = seq_lens.data();
    b.page_start = page_start.data();
    b.pages = pages.data();
    return b;
  }
};

// A KV pool of random blocks on host and device, and a source of page lists over it.
class Pool {
 public:
  Pool(const Shape& shape, int32_t block_size, int32_t blocks, std::mt19937& rng)
      : shape_(shape),
        block_size_(block_size),
        blocks_(blocks),
        k_(random_values(elems(), rng)),
        v_(random_values(elems(), rng)),
        k_host_(elems()),
        dk_(elems()),
        dv_(elems()),
        order_(static_cast<std::size_t>(blocks)) {
    dk_.upload(k_.raw);
    dv_.upload(v_.raw);
    transpose_keys();
    std::iota(order_.begin(), order_.end(), 0);
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  std::size_t elems() const {
    return static_cast<std::size_t>(blocks_) * block_size_ * shape_.n_head_kv * shape_.head_dim;
  }
  const bf16* k() const { return dk_.get(); }
  const bf16* v() const { return dv_.get(); }
  // The same pool as the CPU runner lays it out: V as the device holds it, K transposed within
  // each block (cpu::PagedKv).
  cpu::PagedKv host() const {
    return {k_host_.data(),
            v_.f32.data(),
            static_cast<std::size_t>(block_size_) * shape_.n_head_kv * shape_.head_dim,
            block_size_,
            shape_.n_head_kv,
            shape_.head_dim};
  }
  int32_t pages_for(int32_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  // Blocks no other take() returned, in random order.
  std::vector<int32_t> take(int32_t n) {
    if (next_ + n > blocks_) throw std::runtime_error("test pool exhausted");
    std::vector<int32_t> out(order_.begin() + next_, order_.begin() + next_ + n);
    next_ += n;
    return out;
  }
  // Random blocks, repeats allowed (long contexts over a small pool).
  std::vector<int32_t> draw(int32_t n, std::mt19937& rng) const {
    std::uniform_int_distribution<int32_t> pick(0, blocks_ - 1);
    std::vector<int32_t> out(static_cast<std::size_t>(n));
    for (int32_t& b : out) b = pick(rng);
    return out;
  }

 private:
  Shape shape_;
  int32_t block_size_;
  int32_t blocks_;
  // k_host_ from k_ (a row of n_head_kv * head_dim per slot, as the device reads it), placed
  // where cpu::PagedKv::key says each key dim lives.
  void transpose_keys() {
    const cpu::PagedKv kv = host();
    const int32_t hd = shape_.head_dim, nkv = shape_.n_head_kv;
    std::size_t i = 0;
    for (int32_t b = 0; b < blocks_; ++b)
      for (int32_t slot = 0; slot < block_size_; ++slot)
        for (int32_t h = 0; h < nkv; ++h)
          for (int32_t d = 0; d < hd; ++d)
            k_host_[kv.key(b, h, d, slot) - k_host_.data()] = k_.f32[i++];
  }

  Values k_, v_;
  std::vector<float> k_host_;
  DeviceArray<bf16> dk_, dv_;
  std::vector<int32_t> order_;
  int32_t next_ = 0;
};

// Queries of a step: rows of a qkv buffer (only the q part is read), with room for pad_rows.
struct Queries {
  Values host;
  std::unique_ptr<DeviceArray<bf16>> device;
  int32_t stride = 0;
};

Queries random_queries(const Shape& shape, int32_t rows, std::mt19937& rng) {
  Queries q;
  q.stride = shape.q_row_stride();
  q.host = random_values(static_cast<std::size_t>(rows) * q.stride, rng);
  q.device = std::make_unique<DeviceArray<bf16>>(q.host.raw.size());
  q.device->upload(q.host.raw);
  return q;
}

float scale_of(const Shape& shape) {
  return 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
}

// cpu::attend for every query row of the step: causal, within `window` positions when > 0.
std::vector<float> reference(const Shape& shape, const Pool& pool, const Step& step,
                             const Queries& q, int32_t window) {
  const int32_t hd = shape.head_dim, group = shape.group();
  const std::size_t width = static_cast<std::size_t>(shape.n_head) * hd;
  std::vector<float> out(static_cast<std::size_t>(step.rows()) * width);
  std::vector<float> scores;
  const cpu::PagedKv kv = pool.host();
  for (int32_t s = 0; s < step.num_seqs(); ++s) {
    const std::span<const int32_t> pages(
        step.pages.data() + step.page_start[s],
        static_cast<std::size_t>(step.page_start[s + 1] - step.page_start[s]));
    const int32_t first_row = step.query_start[s];
    const int32_t n = step.query_start[s + 1] - first_row;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t pos = step.seq_lens[s] - n + i;
      const int32_t first = window > 0 ? std::max(0, pos - window + 1) : 0;
      const std::size_t row = static_cast<std::size_t>(first_row + i);
      for (int32_t h = 0; h < shape.n_head_kv; ++h)
        cpu::attend(q.host.f32.data() + row * q.stride + static_cast<std::size_t>(h) * group * hd,
                    group, h, pages, first, pos, kv, scale_of(shape),
                    out.data() + row * width + static_cast<std::size_t>(h) * group * hd, scores);
    }
  }
  return out;
}

// Every element written (no NaN poison left) and within the stated tolerance.
void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& what) {
  ASSERT_GE(got.size(), want.size()) << what;
  std::size_t bad = 0, first_bad = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const bool ok = std::isfinite(got[i]) && err <= 2e-3 + 1e-2 * std::fabs(want[i]);
    if (std::isfinite(got[i])) worst = std::max(worst, err);
    if (!ok && bad++ == 0) first_bad = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << want.size() << " elements off; first at "
                     << first_bad << " (got " << got[first_bad] << ", want " << want[first_bad]
                     << "); worst finite error " << worst;
}

AttentionConfig config_for(const Shape& shape, int32_t block_size, int32_t window = 0) {
  AttentionConfig c;
  c.n_head = shape.n_head;
  c.n_head_kv = shape.n_head_kv;
  c.head_dim = shape.head_dim;
  c.block_size = block_size;
  c.max_tokens = 4096;
  c.max_seqs = 128;
  c.max_pages = 40000;
  c.scale = scale_of(shape);
  c.window = window;
  return c;
}

// The backend's output for one layer of an already planned step, as f32.
std::vector<float> run_layer(AttentionBackend& backend, const Shape& shape, const Pool& pool,
                             const Queries& q, int32_t rows, int32_t window) {
  DeviceArray<bf16> out(static_cast<std::size_t>(rows) * shape.n_head * shape.head_dim);
  cuda_ok(cudaMemset(out.get(), 0xFF,
                     static_cast<std::size_t>(rows) * shape.n_head * shape.head_dim * sizeof(bf16)),
          "poison");
  backend.run(q.device->get(), q.stride, pool.k(), pool.v(), window, out.get(), nullptr);
  cuda_ok(cudaDeviceSynchronize(), "attention run");
  const std::vector<bf16> raw = out.download();
  std::vector<float> f(raw.size());
  std::transform(raw.begin(), raw.end(), f.begin(), [](bf16 x) { return __bfloat162float(x); });
  return f;
}

// Plans the step and checks every layer kind the config has against the reference.
void expect_step(AttentionBackend& backend, const Shape& shape, const Pool& pool, const Step& step,
                 const Queries& q, int32_t window, const std::string& what) {
  backend.plan(step.batch(), nullptr);
  const std::string plan = " [" + backend.planned() + "]";
  expect_close(run_layer(backend, shape, pool, q, step.rows(), 0),
               reference(shape, pool, step, q, 0), what + ", full" + plan);
  if (window > 0)
    expect_close(run_layer(backend, shape, pool, q, step.rows(), window),
                 reference(shape, pool, step, q, window), what + ", window" + plan);
}

class AttentionTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  }
  const Shape& shape() const { return GetParam(); }
  std::mt19937 rng_{20261202};
};

// The step through a backend that may take FA3 (on Hopper) and one held to FA2.
void expect_step_fa3_and_fa2(const Shape& shape, const Pool& pool, const Step& step,
                             const Queries& q, const std::string& what) {
  for (bool fa3 : {true, false}) {
    AttentionConfig c = config_for(shape, 16);
    c.fa3 = fa3;
    auto backend = make_attention_backend(c);
    expect_step(*backend, shape, pool, step, q, 0, what + (fa3 ? " (fa3 allowed)" : " (fa2)"));
  }
}

// Several whole sequences, pages in random order.
TEST_P(AttentionTest, Prefill) {
  Pool pool(shape(), 16, 256, rng_);
  Step step;
  for (int32_t len : {1, 16, 129, 700, 1000}) step.add(len, len, pool.take(pool.pages_for(len)));
  expect_step_fa3_and_fa2(shape(), pool, step, random_queries(shape(), step.rows(), rng_),
                          "prefill");
}

// The block size is a run-time value (every kernel takes it as a parameter).
TEST_P(AttentionTest, PrefillBlockSize32) {
  Pool pool(shape(), 32, 128, rng_);
  Step step;
  for (int32_t len : {33, 500, 900}) step.add(len, len, pool.take(pool.pages_for(len)));
  const Queries q = random_queries(shape(), step.rows(), rng_);
  auto backend = make_attention_backend(config_for(shape(), 32));
  expect_step(*backend, shape(), pool, step, q, 0, "prefill, block size 32");
}

// Queries that start mid-sequence (the earlier tokens' KV cached by previous steps).
TEST_P(AttentionTest, ChunkedPrefill) {
  Pool pool(shape(), 16, 512, rng_);
  Step step;
  const int32_t lens[][2] = {{700, 200}, {1500, 137}, {64, 64}, {1201, 300}, {2000, 1}};
  for (const auto& [len, rows] : lens) step.add(len, rows, pool.take(pool.pages_for(len)));
  expect_step_fa3_and_fa2(shape(), pool, step, random_queries(shape(), step.rows(), rng_),
                          "chunked prefill");
}

// One query row per sequence: 1, 8 and 64 sequences at short and ~4K contexts.
TEST_P(AttentionTest, Decode) {
  Pool pool(shape(), 16, 1024, rng_);
  auto backend = make_attention_backend(config_for(shape(), 16));
  for (int32_t seqs : {1, 8, 64}) {
    for (bool long_context : {false, true}) {
      std::uniform_int_distribution<int32_t> len_dist(long_context ? 3900 : 1,
                                                      long_context ? 4200 : 200);
      Step step;
      for (int32_t s = 0; s < seqs; ++s) {
        const int32_t len = len_dist(rng_);
        step.add(len, 1, pool.draw(pool.pages_for(len), rng_));
      }
      const Queries q = random_queries(shape(), step.rows(), rng_);
      expect_step(*backend, shape(), pool, step, q, 0,
                  "decode of " + std::to_string(seqs) + (long_context ? " at ~4K" : " short"));
    }
  }
}

// Decode rows and prefill chunks in one step, through the prefill kernels: short mean query
// length (FA2 everywhere) and long (FA3 on Hopper).
TEST_P(AttentionTest, Mixed) {
  Pool pool(shape(), 16, 1024, rng_);
  auto backend = make_attention_backend(config_for(shape(), 16));
  const std::vector<std::vector<std::array<int32_t, 2>>> steps = {
      {{300, 1}, {17, 1}, {500, 50}, {1000, 1}, {120, 120}, {2500, 1}, {64, 1}, {33, 1}},
      {{900, 1}, {700, 300}, {1600, 1}, {400, 400}, {77, 1}}};
  for (const auto& seqs : steps) {
    Step step;
    for (const auto& [len, rows] : seqs) step.add(len, rows, pool.take(pool.pages_for(len)));
    const Queries q = random_queries(shape(), step.rows(), rng_);
    expect_step(*backend, shape(), pool, step, q, 0,
                "mixed step of " + std::to_string(step.rows()) + " rows");
  }
}

// A window shorter than the context: the windowed and the full layer from one plan, in a prefill
// step and a decode step.
TEST_P(AttentionTest, SlidingWindow) {
  constexpr int32_t kWindow = 100;
  Pool pool(shape(), 16, 1024, rng_);
  auto backend = make_attention_backend(config_for(shape(), 16, kWindow));
  Step prefill;
  const int32_t chunks[][2] = {{1200, 300}, {250, 250}, {37, 37}, {1000, 1}};
  for (const auto& [len, rows] : chunks) prefill.add(len, rows, pool.take(pool.pages_for(len)));
  const Queries qp = random_queries(shape(), prefill.rows(), rng_);
  expect_step(*backend, shape(), pool, prefill, qp, kWindow, "windowed prefill");
  Step decode;
  for (int32_t len : {1000, 37, 4000, 101, 116})
    decode.add(len, 1, pool.draw(pool.pages_for(len), rng_));
  const Queries qd = random_queries(shape(), decode.rows(), rng_);
  expect_step(*backend, shape(), pool, decode, qd, kWindow, "windowed decode");
}

// 25 sequences sharing a 300-page prefix (the same block ids) plus their own pages, then three
// sequences of their own: the cascade against the reference and against the plain path; the
// windowed layer of the same step does not take the cascade (a window of 64 tokens cannot hold
// kCascadeMinSharedPages common pages beside the sequences' own tokens).
TEST_P(AttentionTest, Cascade) {
  constexpr int32_t kWindow = 64;
  Pool pool(shape(), 16, 1600, rng_);
  const std::vector<int32_t> prefix = pool.take(300);
  std::uniform_int_distribution<int32_t> own_dist(1, 40), tail_dist(0, 15);
  Step step;
  for (int32_t s = 0; s < 28; ++s) {
    const int32_t own = own_dist(rng_);
    std::vector<int32_t> pages = s < 25 ? prefix : pool.take(30);
    const std::vector<int32_t> mine = pool.take(own);
    pages.insert(pages.end(), mine.begin(), mine.end());
    step.add(static_cast<int32_t>(pages.size()) * 16 - tail_dist(rng_), 1, pages);
  }
  const Queries q = random_queries(shape(), step.rows(), rng_);
  auto cascade = make_attention_backend(config_for(shape(), 16, kWindow));
  expect_step(*cascade, shape(), pool, step, q, kWindow, "cascade step");
  EXPECT_NE(cascade->planned().find("cascade (4 groups"), std::string::npos) << cascade->planned();
  EXPECT_EQ(cascade->planned().find("windowed: cascade"), std::string::npos) << cascade->planned();
  const std::vector<float> with = run_layer(*cascade, shape(), pool, q, step.rows(), 0);
  AttentionConfig plain_config = config_for(shape(), 16, kWindow);
  plain_config.cascade = false;
  auto plain = make_attention_backend(plain_config);
  plain->plan(step.batch(), nullptr);
  EXPECT_EQ(plain->planned().find("cascade"), std::string::npos) << plain->planned();
  expect_close(with, run_layer(*plain, shape(), pool, q, step.rows(), 0), "cascade vs plain");
}

// `rows` decode sequences sharing `prefix`, each with 1 .. max_own tokens of its own after it
// (pages from the pool): max_own for the first, 1 for the second, random for the others.
void add_sharers(Step& step, Pool& pool, const std::vector<int32_t>& prefix, int32_t rows,
                 int32_t max_own, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> own_dist(1, max_own);
  const int32_t shared_tokens = static_cast<int32_t>(prefix.size()) * 16;
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t len = shared_tokens + (r == 0 ? max_own : r == 1 ? 1 : own_dist(rng));
    std::vector<int32_t> pages = prefix;
    const std::vector<int32_t> mine =
        pool.take(pool.pages_for(len) - pool.pages_for(shared_tokens));
    pages.insert(pages.end(), mine.begin(), mine.end());
    step.add(len, 1, pages);
  }
}

// The windowed layer of a planned decode step against the reference and against a backend with
// the cascade off. common > 0: the windowed layer must have taken the cascade with that many
// common pages; 0: it must not have.
void expect_windowed(AttentionBackend& backend, const Shape& shape, const Pool& pool,
                     const Step& step, const Queries& q, int32_t window, int32_t common,
                     const std::string& what) {
  backend.plan(step.batch(), nullptr);
  const std::string plan = backend.planned();
  const std::size_t at = plan.find("windowed: cascade");
  EXPECT_EQ(at != std::string::npos, common > 0) << what << ": " << plan;
  if (common > 0 && at != std::string::npos)
    EXPECT_NE(plan.find(", " + std::to_string(common) + " common pages", at), std::string::npos)
        << what << ": " << plan;
  const std::vector<float> got = run_layer(backend, shape, pool, q, step.rows(), window);
  expect_close(got, reference(shape, pool, step, q, window), what + " [" + plan + "]");
  AttentionConfig plain_config = config_for(shape, 16, window);
  plain_config.cascade = false;
  auto plain = make_attention_backend(plain_config);
  plain->plan(step.batch(), nullptr);
  ASSERT_EQ(plain->planned().find("cascade"), std::string::npos) << plain->planned();
  expect_close(got, run_layer(*plain, shape, pool, q, step.rows(), window),
               what + " vs the cascade off");
}

// Windowed layers over shared prefixes (block 16). 25 sequences sharing 300 pages with 1 to 48
// tokens of their own (1 to 3 pages), a short sequence of its own (all in every window) and a
// long one: window 1000 takes the cascade (D = 300 - ceil((4800 + 48 - 1000) / 16) = 59 common
// pages, a suffix window of 56 tokens), as does the full layer of the same plan; window 100 does
// not (D = 300 - ceil((4848 - 100) / 16) = 3 < kCascadeMinSharedPages). Then two groups of 40
// sequences (200 and 300 shared pages, 1 to 36 own tokens) and the short one: window 100 takes
// it with D = 4 (a suffix window of 36 tokens), window 1000 with D = 60.
TEST_P(AttentionTest, WindowedCascade) {
  Pool pool(shape(), 16, 1300, rng_);
  Step one_group;
  add_sharers(one_group, pool, pool.take(300), 25, 48, rng_);
  one_group.add(40, 1, pool.take(3));
  one_group.add(700, 1, pool.take(44));
  const Queries q1 = random_queries(shape(), one_group.rows(), rng_);
  auto w1000 = make_attention_backend(config_for(shape(), 16, 1000));
  expect_windowed(*w1000, shape(), pool, one_group, q1, 1000, 59, "one group, window 1000");
  EXPECT_NE(w1000->planned().find("full: cascade (3 groups"), std::string::npos)
      << w1000->planned();
  expect_close(run_layer(*w1000, shape(), pool, q1, one_group.rows(), 0),
               reference(shape(), pool, one_group, q1, 0),
               "one group, full layer after the windowed one [" + w1000->planned() + "]");
  auto w100 = make_attention_backend(config_for(shape(), 16, 100));
  expect_windowed(*w100, shape(), pool, one_group, q1, 100, 0, "one group, window 100");

  Step two_groups;
  add_sharers(two_groups, pool, pool.take(200), 40, 36, rng_);
  add_sharers(two_groups, pool, pool.take(300), 40, 36, rng_);
  two_groups.add(40, 1, pool.take(3));
  const Queries q2 = random_queries(shape(), two_groups.rows(), rng_);
  expect_windowed(*w100, shape(), pool, two_groups, q2, 100, 4, "two groups, window 100");
  expect_windowed(*w1000, shape(), pool, two_groups, q2, 1000, 60, "two groups, window 1000");
}

// 40 sequences sharing 20 pages (1 to 36 own tokens) beside 4 long sequences of their own
// (600 pages each): the full layers' cascade saves 39 * 20 = 780 of at least 40 * 21 + 2400 page
// reads, less than a quarter, but the windowed layers' (window 100, D = 4) saves 156 of about 350.
// The windowed layer takes it alone; the full layer then runs the plain plan, not padded for the
// graph the step asked for (a windowed-cascade step is not graph-ready).
TEST_P(AttentionTest, WindowedCascadeWithoutFullCascade) {
  constexpr int32_t kWindow = 100;
  Pool pool(shape(), 16, 1200, rng_);
  Step step;
  add_sharers(step, pool, pool.take(20), 40, 36, rng_);
  for (int32_t s = 0; s < 4; ++s) step.add(600 * 16 - 5 * s, 1, pool.draw(600, rng_));
  const Queries q = random_queries(shape(), step.rows(), rng_);
  auto backend = make_attention_backend(config_for(shape(), 16, kWindow));
  backend->plan(step.batch(64), nullptr);
  const std::string plan = backend->planned();
  EXPECT_FALSE(backend->graph_ready()) << plan;
  EXPECT_EQ(plan.find("full: cascade"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("for a graph"), std::string::npos) << plan;
  EXPECT_NE(plan.find("windowed: cascade (5 groups, 4 common pages"), std::string::npos) << plan;
  expect_close(run_layer(*backend, shape(), pool, q, step.rows(), kWindow),
               reference(shape(), pool, step, q, kWindow), "windowed [" + plan + "]");
  expect_close(run_layer(*backend, shape(), pool, q, step.rows(), 0),
               reference(shape(), pool, step, q, 0), "full [" + plan + "]");
}

// A decode step captured into a CUDA graph (full and windowed layer), re-planned for other
// sequences and lengths of the same graph size, replayed: the replay computes the new step.
TEST_P(AttentionTest, GraphReplay) {
  constexpr int32_t kGraphSeqs = 16, kWindow = 48;
  Pool pool(shape(), 16, 1024, rng_);
  auto backend = make_attention_backend(config_for(shape(), 16, kWindow));
  const auto decode_step = [&](int32_t seqs, int32_t max_len) {
    std::uniform_int_distribution<int32_t> len_dist(1, max_len);
    Step step;
    for (int32_t s = 0; s < seqs; ++s) {
      const int32_t len = len_dist(rng_);
      step.add(len, 1, pool.draw(pool.pages_for(len), rng_));
    }
    return step;
  };
  const Step first = decode_step(10, 300), second = decode_step(13, 3000);
  const Queries q = random_queries(shape(), kGraphSeqs, rng_);
  const std::size_t out_elems =
      static_cast<std::size_t>(kGraphSeqs) * shape().n_head * shape().head_dim;
  DeviceArray<bf16> out_full(out_elems), out_window(out_elems);
  cudaStream_t stream = nullptr;
  cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  const auto layers = [&] {
    backend->run(q.device->get(), q.stride, pool.k(), pool.v(), 0, out_full.get(), stream);
    backend->run(q.device->get(), q.stride, pool.k(), pool.v(), kWindow, out_window.get(), stream);
  };
  backend->plan(first.batch(kGraphSeqs), stream);
  ASSERT_TRUE(backend->graph_ready()) << backend->planned();
  layers();  // warm-up outside the capture
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
  layers();
  cuda_ok(cudaStreamEndCapture(stream, &graph), "end capture");
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  backend->plan(second.batch(kGraphSeqs), stream);
  ASSERT_TRUE(backend->graph_ready()) << backend->planned();
  cuda_ok(cudaMemsetAsync(out_full.get(), 0xFF, out_elems * sizeof(bf16), stream), "poison");
  cuda_ok(cudaMemsetAsync(out_window.get(), 0xFF, out_elems * sizeof(bf16), stream), "poison");
  cuda_ok(cudaGraphLaunch(exec, stream), "replay");
  cuda_ok(cudaStreamSynchronize(stream), "replay sync");
  const auto as_f32 = [](const std::vector<bf16>& raw) {
    std::vector<float> f(raw.size());
    std::transform(raw.begin(), raw.end(), f.begin(), [](bf16 x) { return __bfloat162float(x); });
    return f;
  };
  expect_close(as_f32(out_full.download()), reference(shape(), pool, second, q, 0),
               "graph replay, full [" + backend->planned() + "]");
  expect_close(as_f32(out_window.download()), reference(shape(), pool, second, q, kWindow),
               "graph replay, window [" + backend->planned() + "]");
  (void)cudaGraphExecDestroy(exec);
  (void)cudaGraphDestroy(graph);
  (void)cudaStreamDestroy(stream);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest, ::testing::Values(kSmolLm2, kLlama3, kOlmo3),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           return std::string(info.param.name);
                         });

// ---- without a GPU -----------------------------------------------------------------------------

TEST(AttentionConfigTest, RefusesWhatIsNotInstantiated) {
  AttentionConfig c = config_for(kLlama3, 16);
  c.head_dim = 96;
  EXPECT_THROW(make_attention_backend(c), RunError);
  c = config_for(kLlama3, 16);
  c.n_head_kv = 7;
  EXPECT_THROW(make_attention_backend(c), RunError);
  c = config_for(kLlama3, 16);
  c.max_pages = 0;
  EXPECT_THROW(make_attention_backend(c), RunError);
}

std::vector<int32_t> iota_pages(int32_t first, int32_t n) {
  std::vector<int32_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(AttentionTablesTest, StepTablePadsForGraphs) {
  Step step;
  step.add(20, 1, {7, 3});
  step.add(5, 1, {9});
  PageTable t;
  step_table(step.tables(16), 4, t);
  EXPECT_EQ(t.q_indptr, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(t.kv_indptr, (std::vector<int32_t>{0, 2, 3, 4, 5}));
  EXPECT_EQ(t.indices, (std::vector<int32_t>{7, 3, 9, 7, 7}));
  EXPECT_EQ(t.last_page_len, (std::vector<int32_t>{4, 5, 1, 1}));
  EXPECT_EQ(t.kv_len, (std::vector<int32_t>{20, 5, 1, 1}));
}

TEST(AttentionTablesTest, WindowTableDropsPagesNoQuerySees) {
  Step step;
  step.add(100, 1, iota_pages(0, 7));    // query at 99, window 40: positions 60..99, pages 3..6
  step.add(100, 50, iota_pages(10, 7));  // queries 50..99: positions 11..99, pages 0..6
  step.add(30, 30, iota_pages(20, 2));   // nothing to drop
  PageTable t;
  window_table(step.tables(16), 40, 0, t);
  EXPECT_EQ(t.kv_indptr, (std::vector<int32_t>{0, 4, 11, 13}));
  EXPECT_EQ(std::vector<int32_t>(t.indices.begin(), t.indices.begin() + 4),
            (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(t.kv_len, (std::vector<int32_t>{100 - 48, 100, 30}));
  EXPECT_EQ(t.last_page_len, (std::vector<int32_t>{4, 4, 14}));
  EXPECT_EQ(t.q_indptr, (std::vector<int32_t>{0, 1, 51, 81}));
}

TEST(AttentionTablesTest, CascadeGroupsConsecutiveSharers) {
  const std::vector<int32_t> shared = iota_pages(1000, 100);
  Step step;
  for (int32_t s = 0; s < 4; ++s) {  // 4 sequences share 100 pages, own 1 + s more
    std::vector<int32_t> pages = shared;
    const std::vector<int32_t> own = iota_pages(2000 + 10 * s, 1 + s);
    pages.insert(pages.end(), own.begin(), own.end());
    step.add(static_cast<int32_t>(pages.size()) * 16 - 3, 1, pages);
  }
  step.add(40, 1, iota_pages(3000, 3));  // a sequence of its own
  for (int32_t s = 0; s < 2; ++s) {      // two that share 10 pages (also the first four's)
    std::vector<int32_t> pages = iota_pages(1000, 10);
    const std::vector<int32_t> own = iota_pages(4000 + 20 * s, 12);
    pages.insert(pages.end(), own.begin(), own.end());
    step.add(22 * 16, 1, pages);
  }
  CascadeGroups g;
  ASSERT_TRUE(find_cascade_groups(step.tables(16), g));
  EXPECT_EQ(g.first, (std::vector<int32_t>{0, 4, 5, 7}));
  EXPECT_EQ(g.shared, (std::vector<int32_t>{100, 2, 10}));
  EXPECT_EQ(g.saved_pages, 3 * 100 + 10);
  PageTable prefix, suffix;
  cascade_tables(step.tables(16), g, prefix, suffix);
  EXPECT_EQ(prefix.q_indptr, (std::vector<int32_t>{0, 4, 5, 7}));
  EXPECT_EQ(prefix.kv_len, (std::vector<int32_t>{1600, 32, 160}));
  EXPECT_EQ(prefix.last_page_len, (std::vector<int32_t>{16, 16, 16}));
  // Each sequence's pages are its group's prefix followed by its suffix, none empty.
  for (int32_t s = 0; s < step.num_seqs(); ++s) {
    const int32_t grp = static_cast<int32_t>(std::upper_bound(g.first.begin(), g.first.end(), s) -
                                             g.first.begin() - 1);
    std::vector<int32_t> joined(prefix.indices.begin() + prefix.kv_indptr[grp],
                                prefix.indices.begin() + prefix.kv_indptr[grp + 1]);
    joined.insert(joined.end(), suffix.indices.begin() + suffix.kv_indptr[s],
                  suffix.indices.begin() + suffix.kv_indptr[s + 1]);
    EXPECT_EQ(joined, std::vector<int32_t>(step.pages.begin() + step.page_start[s],
                                           step.pages.begin() + step.page_start[s + 1]))
        << "sequence " << s;
    EXPECT_GT(suffix.kv_indptr[s + 1], suffix.kv_indptr[s]);
    EXPECT_EQ(prefix.kv_len[grp] + suffix.kv_len[s], step.seq_lens[s]);
  }
}

TEST(AttentionTablesTest, CascadeNotTakenWhenItDoesNotPay) {
  Step step;
  step.add(16 * 30, 1, iota_pages(0, 30));
  step.add(16 * 30, 1, iota_pages(100, 30));  // nothing shared
  CascadeGroups g;
  EXPECT_FALSE(find_cascade_groups(step.tables(16), g));
  Step one_page;  // a sequence of one page cannot be split into prefix and suffix
  for (int32_t s = 0; s < 40; ++s) one_page.add(16 * 30, 1, iota_pages(0, 30));
  one_page.add(3, 1, {500});
  EXPECT_FALSE(find_cascade_groups(one_page.tables(16), g));
  Step prefill;  // not a decode step
  prefill.add(16 * 30, 2, iota_pages(0, 30));
  prefill.add(16 * 30, 1, iota_pages(0, 30));
  EXPECT_FALSE(find_cascade_groups(prefill.tables(16), g));
}

// A sequence of `len` tokens: `shared` followed by pages of its own from `next_id` on.
void add_sharer(Step& step, const std::vector<int32_t>& shared, int32_t len, int32_t block_size,
                int32_t& next_id) {
  std::vector<int32_t> pages = shared;
  const int32_t own = (len + block_size - 1) / block_size - static_cast<int32_t>(shared.size());
  const std::vector<int32_t> mine = iota_pages(next_id, own);
  next_id += own;
  pages.insert(pages.end(), mine.begin(), mine.end());
  step.add(len, 1, pages);
}

std::vector<int32_t> slice(const std::vector<int32_t>& v, int32_t from, int32_t to) {
  return std::vector<int32_t>(v.begin() + from, v.begin() + to);
}

// Group A: 4 sequences sharing 100 pages, windows starting at 605, 617, 648, 601 (page 37, 38,
// 40, 37); group B: 2 short sequences (all in the window) sharing 10 pages; C: a short sequence
// of its own (3 pages); E: a long one of its own (75 pages, window from 200). Window 1000,
// block 16. D = min over sequences of S_g + floor((1000 - L) / 16): 62, 61, 59, 62 (A), 61, 62
// (B), 62 (C), 61 (E) -> 59; the suffix window is 1000 - 59 * 16 = 56 tokens.
TEST(AttentionTablesTest, WindowCascadeTablesExact) {
  constexpr int32_t kBlock = 16, kWindow = 1000;
  Step step;
  int32_t next_id = 5000;
  for (int32_t len : {1605, 1617, 1648, 1601})
    add_sharer(step, iota_pages(1000, 100), len, 16, next_id);
  for (int32_t len : {180, 167}) add_sharer(step, iota_pages(2000, 10), len, 16, next_id);
  step.add(40, 1, iota_pages(3000, 3));
  step.add(1200, 1, iota_pages(4000, 75));
  const StepTables tables = step.tables(kBlock);
  CascadeGroups g;
  ASSERT_TRUE(find_cascade_groups(tables, g));
  ASSERT_EQ(g.first, (std::vector<int32_t>{0, 4, 6, 7, 8}));
  ASSERT_EQ(g.shared, (std::vector<int32_t>{100, 10, 2, 74}));
  WindowCascade plan;
  ASSERT_TRUE(find_window_cascade(tables, g, kWindow, plan));
  EXPECT_EQ(plan.common, 59);
  EXPECT_EQ(plan.window_left, 55);
  // Saved: 3 * 59 (A) + 1 * 10 (B, all its 10 shared pages); plain windowed pages:
  // 64 + 64 + 63 + 64 + 12 + 11 + 3 + 63 = 344 <= 4 * 187.
  EXPECT_EQ(plan.saved_pages, 187);
  PageTable prefix, suffix;
  window_cascade_tables(tables, g, plan, prefix, suffix);
  // Prefixes: A's shared pages [41, 100), B's and C's all, E's [15, 74).
  EXPECT_EQ(prefix.q_indptr, (std::vector<int32_t>{0, 4, 6, 7, 8}));
  EXPECT_EQ(prefix.kv_indptr, (std::vector<int32_t>{0, 59, 69, 71, 130}));
  EXPECT_EQ(slice(prefix.indices, 0, 59), iota_pages(1041, 59));
  EXPECT_EQ(slice(prefix.indices, 59, 69), iota_pages(2000, 10));
  EXPECT_EQ(slice(prefix.indices, 69, 71), iota_pages(3000, 2));
  EXPECT_EQ(slice(prefix.indices, 71, 130), iota_pages(4015, 59));
  EXPECT_EQ(prefix.kv_len, (std::vector<int32_t>{944, 160, 32, 944}));
  EXPECT_EQ(prefix.last_page_len, (std::vector<int32_t>{16, 16, 16, 16}));
  // Suffixes: the window's first pages before the prefix, then the pages after the shared ones.
  const std::vector<std::vector<int32_t>> want = {{1037, 1038, 1039, 1040, 5000},
                                                  {1038, 1039, 1040, 5001, 5002},
                                                  {1040, 5003, 5004, 5005},
                                                  {1037, 1038, 1039, 1040, 5006},
                                                  {5007, 5008},
                                                  {5009},
                                                  {3002},
                                                  {4012, 4013, 4014, 4074}};
  ASSERT_EQ(suffix.num_requests(), 8);
  for (int32_t s = 0; s < 8; ++s)
    EXPECT_EQ(slice(suffix.indices, suffix.kv_indptr[s], suffix.kv_indptr[s + 1]),
              want[static_cast<std::size_t>(s)])
        << "sequence " << s;
  // The kernel keeps the last 56 of each: 69 - 56 = 13 tokens dropped from page 37 for a window
  // from 605 = 37 * 16 + 13, and so on; B, C and E's ends fit whole.
  EXPECT_EQ(suffix.kv_len, (std::vector<int32_t>{69, 65, 64, 65, 20, 7, 8, 64}));
  EXPECT_EQ(suffix.last_page_len, (std::vector<int32_t>{5, 1, 16, 1, 4, 7, 8, 16}));
  EXPECT_EQ(suffix.q_indptr, iota_pages(0, 9));
}

// The positions a decode row attends through the windowed cascade's two launches, as FlashInfer's
// masks select them (the prefix request whole; of the suffix request, the tokens t with
// t + 1 + window_left >= kv_len), mapped back through the row's own page list (ids unique).
std::vector<int32_t> cascade_positions(const Step& step, int32_t s, int32_t group,
                                       const PageTable& prefix, const PageTable& suffix,
                                       int32_t window_left, int32_t block_size) {
  const std::vector<int32_t> mine = slice(step.pages, step.page_start[s], step.page_start[s + 1]);
  std::vector<int32_t> out;
  const auto take = [&](const PageTable& t, int32_t request, int32_t first_token) {
    for (int32_t tok = first_token; tok < t.kv_len[request]; ++tok) {
      const int32_t page = t.indices[t.kv_indptr[request] + tok / block_size];
      const auto at = std::find(mine.begin(), mine.end(), page);
      if (at == mine.end()) {
        out.push_back(-1);  // a page not the row's
        continue;
      }
      out.push_back(static_cast<int32_t>(at - mine.begin()) * block_size + tok % block_size);
    }
  };
  take(prefix, group, 0);
  take(suffix, s, std::max(0, suffix.kv_len[s] - (window_left + 1)));
  std::sort(out.begin(), out.end());
  return out;
}

// Random steps of groups (long and short sequences, groups of one), windows and block sizes:
// wherever the windowed cascade is taken, every row attends exactly its window's positions, each
// once, and the prefix requests cover only full pages.
TEST(AttentionTablesTest, WindowCascadeAttendsExactlyTheWindow) {
  std::mt19937 rng(7);
  int32_t taken = 0, with_short_groups = 0;
  for (int32_t trial = 0; trial < 300; ++trial) {
    const int32_t block = trial % 3 == 0 ? 32 : 16;
    const int32_t window = std::array<int32_t, 4>{64, 100, 1000, 4096}[trial % 4];
    Step step;
    int32_t next_id = 100000;
    const int32_t groups = 1 + static_cast<int32_t>(rng() % 4);
    bool short_group = false;
    for (int32_t gi = 0; gi < groups; ++gi) {
      const int32_t shared = 4 + static_cast<int32_t>(rng() % 300);
      const std::vector<int32_t> pages = iota_pages(next_id, shared);
      next_id += shared;
      const int32_t rows = 1 + static_cast<int32_t>(rng() % 30);
      const int32_t max_own = 1 + static_cast<int32_t>(rng() % (3 * block));
      short_group = short_group || (shared + 3) * block <= window;
      for (int32_t r = 0; r < rows; ++r)
        add_sharer(step, pages, shared * block + 1 + static_cast<int32_t>(rng() % max_own), block,
                   next_id);
    }
    const StepTables tables = step.tables(block);
    CascadeGroups g;
    (void)find_cascade_groups(tables, g);
    ASSERT_GT(g.num_groups(), 0);
    WindowCascade plan;
    if (!find_window_cascade(tables, g, window, plan)) continue;
    ++taken;
    with_short_groups += short_group ? 1 : 0;
    ASSERT_GE(plan.window_left, 0);
    EXPECT_EQ(plan.window_left, window - 1 - plan.common * block);
    PageTable prefix, suffix;
    window_cascade_tables(tables, g, plan, prefix, suffix);
    ASSERT_EQ(suffix.num_requests(), step.num_seqs());
    for (int32_t gi = 0; gi < g.num_groups(); ++gi) {
      EXPECT_EQ(prefix.kv_len[gi], (prefix.kv_indptr[gi + 1] - prefix.kv_indptr[gi]) * block);
      for (int32_t s = g.first[gi]; s < g.first[gi + 1]; ++s) {
        const int32_t len = step.seq_lens[s];
        std::vector<int32_t> want(static_cast<std::size_t>(std::min(len, window)));
        std::iota(want.begin(), want.end(), std::max(0, len - window));
        ASSERT_EQ(cascade_positions(step, s, gi, prefix, suffix, plan.window_left, block), want)
            << "trial " << trial << ", sequence " << s << " of length " << len << ", window "
            << window << ", block " << block << ", D " << plan.common;
      }
    }
  }
  EXPECT_GT(taken, 100);             // the property was checked on many steps...
  EXPECT_GT(with_short_groups, 10);  // ...some with groups entirely inside the window
}

// Long sequences of their own weigh on the full layers' verdict (all their pages) but not on the
// windowed layers' (their windows only): each layer kind decides for itself.
TEST(AttentionTablesTest, WindowCascadeTakenWhereTheFullOneIsNot) {
  Step step;
  int32_t next_id = 1000;
  for (int32_t s = 0; s < 40; ++s) add_sharer(step, iota_pages(0, 20), 320 + 36, 16, next_id);
  for (int32_t s = 0; s < 4; ++s) step.add(600 * 16, 1, iota_pages(10000 + 1000 * s, 600));
  CascadeGroups g;
  // 39 * 20 = 780 pages saved of 40 * 23 + 4 * 600 = 3320.
  EXPECT_FALSE(find_cascade_groups(step.tables(16), g));
  EXPECT_EQ(g.saved_pages, 780);
  // Window 100: D = 20 - ceil((356 - 100) / 16) = 4; 39 * 4 = 156 saved of 40 * 7 + 4 * 7 = 308.
  WindowCascade plan;
  EXPECT_TRUE(find_window_cascade(step.tables(16), g, 100, plan));
  EXPECT_EQ(plan.common, 4);
  EXPECT_EQ(plan.saved_pages, 156);
}

TEST(AttentionTablesTest, WindowCascadeNotTakenWhenItDoesNotPay) {
  const std::vector<int32_t> shared = iota_pages(0, 100);
  int32_t next_id = 1000;
  // 40 sequences with 50 tokens after the shared pages, window 100: D = floor(50 / 16) = 3 < 4.
  Step wide_own;
  for (int32_t s = 0; s < 40; ++s) add_sharer(wide_own, shared, 1600 + 50, 16, next_id);
  CascadeGroups g;
  WindowCascade plan;
  ASSERT_TRUE(find_cascade_groups(wide_own.tables(16), g));  // the full layers' does pay
  EXPECT_FALSE(find_window_cascade(wide_own.tables(16), g, 100, plan));
  // With 36 tokens of their own, D = 4 and 39 * 4 = 156 pages saved of 40 * 7 = 280: taken.
  Step narrow_own;
  for (int32_t s = 0; s < 40; ++s) add_sharer(narrow_own, shared, 1600 + 36, 16, next_id);
  ASSERT_TRUE(find_cascade_groups(narrow_own.tables(16), g));
  EXPECT_TRUE(find_window_cascade(narrow_own.tables(16), g, 100, plan));
  EXPECT_EQ(plan.common, 4);
  EXPECT_EQ(plan.saved_pages, 39 * 4);
  EXPECT_FALSE(find_window_cascade(narrow_own.tables(16), g, 0, plan));  // no window
  // 3 sequences, window 1000: D = 62 but 2 * 62 = 124 pages saved < kCascadeMinSavedPages.
  Step few;
  for (int32_t s = 0; s < 3; ++s) add_sharer(few, shared, 1600 + 1, 16, next_id);
  (void)find_cascade_groups(few.tables(16), g);
  ASSERT_EQ(g.num_groups(), 1);
  EXPECT_FALSE(find_window_cascade(few.tables(16), g, 1000, plan));
  // Nothing shared: groups of one save nothing.
  Step apart;
  for (int32_t s = 0; s < 20; ++s) apart.add(16 * 30, 1, iota_pages(10000 + 100 * s, 30));
  EXPECT_FALSE(find_cascade_groups(apart.tables(16), g));
  ASSERT_EQ(g.num_groups(), 20);
  EXPECT_FALSE(find_window_cascade(apart.tables(16), g, 1000, plan));
  // Not a decode step: no groups at all.
  Step prefill;
  prefill.add(16 * 30, 2, iota_pages(0, 30));
  prefill.add(16 * 30, 1, iota_pages(0, 30));
  EXPECT_FALSE(find_cascade_groups(prefill.tables(16), g));
  EXPECT_EQ(g.num_groups(), 0);
  EXPECT_FALSE(find_window_cascade(prefill.tables(16), g, 1000, plan));
}

TEST(AttentionTablesTest, CheckStepNamesTheBadSequence) {
  Step step;
  step.add(20, 1, {1, 2});
  step.add(20, 1, {3});  // 20 tokens need 2 pages
  try {
    check_step(step.tables(16));
    FAIL() << "accepted a short page list";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 1"), std::string::npos) << e.what();
  }
  Step rows;
  rows.add(3, 5, {1});
  EXPECT_THROW(check_step(rows.tables(16)), RunError);
}

}  // namespace
}  // namespace flowrank::engine::cuda
