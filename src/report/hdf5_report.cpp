#include "flowrank/report/hdf5_report.hpp"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "columns.hpp"
#include "flowrank/common/error.hpp"
#include "flowrank/common/files.hpp"

namespace flowrank::report {
namespace fs = std::filesystem;

namespace {

// Fixed root attributes; `extra` keys may not reuse these names.
constexpr std::array<std::string_view, 8> kFixedAttributes = {
    "flowrank_version", "job_name",   "job_sha256", "model",
    "device",           "world_size", "started_at", "report_format"};

// Owns one HDF5 identifier and closes it with the matching H5*close.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  H5Id& operator=(H5Id&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = -1;
    }
    return *this;
  }
  ~H5Id() { reset(); }
  hid_t get() const { return id_; }
  // Closes now and reports failure (a file's close is where its last bytes reach the disk).
  herr_t close() {
    herr_t rc = 0;
    if (id_ >= 0 && closer_) rc = closer_(id_);
    id_ = -1;
    return rc;
  }

 private:
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// HDF5 prints its error stack to stderr by default; we report one line instead. Restores the
// previous handler so that other HDF5 users in the process keep theirs.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// Failures while writing are ours or the system's (RunError); while reading, the file's
// (InputError).
class Hdf5Writer {
 public:
  explicit Hdf5Writer(std::string path) : path_(std::move(path)) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw RunError(path_ + ": HDF5 write failed: " + what);
  }
  hid_t check(hid_t id, const std::string& what) const {
    if (id < 0) fail(what);
    return id;
  }
  void check_rc(herr_t rc, const std::string& what) const {
    if (rc < 0) fail(what);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// File access without POSIX locks: we never write a file in place (a fresh temp file is renamed
// over the report), and lock calls fail on some cluster file systems (Lustre, NFS) with ENOSYS.
H5Id unlocked_file_access() {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return {};
  H5Id owned(fapl, H5Pclose);
#if H5_VERSION_GE(1, 10, 7)
  if (H5Pset_file_locking(fapl, false, true) < 0) return {};
#endif
  return owned;
}

H5Id vlen_utf8_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return {};
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return {};
  }
  return H5Id(t, H5Tclose);
}

// ---- tables ---------------------------------------------------------------------------------

using detail::Column;
using detail::Kind;
using detail::kind_of;

size_t size_of(Kind k) {
  return k == Kind::I32 ? 4 : (k == Kind::F64 || k == Kind::I64) ? 8 : sizeof(char*);
}

// In-memory row layout: each field at its natural alignment, the row padded to 8 bytes.
template <class R>
std::vector<size_t> memory_offsets(const std::vector<Column<R>>& columns, size_t* row_size) {
  std::vector<size_t> offsets;
  size_t at = 0;
  for (const auto& c : columns) {
    const size_t sz = size_of(kind_of(c));
    at = (at + sz - 1) / sz * sz;
    offsets.push_back(at);
    at += sz;
  }
  *row_size = (at + 7) / 8 * 8;
  return offsets;
}

// Builds the compound type: in memory (native types at `offsets`) or in the file (packed,
// little-endian).
template <class R>
H5Id compound_type(const std::vector<Column<R>>& columns, bool in_file, const H5Id& str_type) {
  size_t row_size = 0;
  std::vector<size_t> offsets = memory_offsets(columns, &row_size);
  if (in_file) {
    size_t at = 0;
    for (size_t i = 0; i < columns.size(); ++i) {
      offsets[i] = at;
      at += size_of(kind_of(columns[i]));
    }
    row_size = at;
  }
  hid_t t = H5Tcreate(H5T_COMPOUND, row_size);
  if (t < 0) return {};
  H5Id type(t, H5Tclose);
  for (size_t i = 0; i < columns.size(); ++i) {
    hid_t member = -1;
    switch (kind_of(columns[i])) {
      case Kind::I32:
        member = in_file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
        break;
      case Kind::F64:
        member = in_file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
        break;
      case Kind::I64:
        member = in_file ? H5T_STD_I64LE : H5T_NATIVE_INT64;
        break;
      case Kind::Str:
        member = str_type.get();
        break;
    }
    if (H5Tinsert(t, columns[i].name, offsets[i], member) < 0) return {};
  }
  return type;
}

template <class R>
void write_table(const Hdf5Writer& w, hid_t file, const char* name,
                 const std::vector<Column<R>>& columns, const std::vector<R>& rows) {
  const std::string what = std::string("table /") + name;
  H5Id str = vlen_utf8_type();
  w.check(str.get(), "string type");
  H5Id mem = compound_type(columns, false, str);
  w.check(mem.get(), what + " memory type");
  H5Id ftype = compound_type(columns, true, str);
  w.check(ftype.get(), what + " file type");

  size_t row_size = 0;
  const std::vector<size_t> offsets = memory_offsets(columns, &row_size);
  std::vector<unsigned char> buf(std::max<size_t>(rows.size(), 1) * row_size, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    unsigned char* row = buf.data() + r * row_size;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::visit(
          [&](auto member) {
            const auto& value = rows[r].*member;
            using V = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<V, std::string>) {
              const char* p = value.c_str();
              std::memcpy(row + offsets[i], &p, sizeof p);
            } else {
              std::memcpy(row + offsets[i], &value, sizeof value);
            }
          },
          columns[i].member);
    }
  }

  const hsize_t dims[1] = {static_cast<hsize_t>(rows.size())};
  H5Id space(w.check(H5Screate_simple(1, dims, nullptr), what + " dataspace"), H5Sclose);
  H5Id ds(w.check(H5Dcreate2(file, name, ftype.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
                  "create " + what),
          H5Dclose);
  if (!rows.empty()) {
    w.check_rc(H5Dwrite(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()),
               "write " + what);
  }
  w.check_rc(ds.close(), "close " + what);
}

void write_string_attribute(const Hdf5Writer& w, hid_t obj, const std::string& name,
                            const std::string& value) {
  H5Id str = vlen_utf8_type();
  w.check(str.get(), "string type");
  H5Id space(w.check(H5Screate(H5S_SCALAR), "attribute dataspace"), H5Sclose);
  H5Id attr(w.check(H5Acreate2(obj, name.c_str(), str.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                    "create attribute '" + name + "'"),
            H5Aclose);
  const char* p = value.c_str();
  w.check_rc(H5Awrite(attr.get(), str.get(), &p), "write attribute '" + name + "'");
}

void write_int_attribute(const Hdf5Writer& w, hid_t obj, const std::string& name, int64_t value,
                         hid_t file_type, hid_t mem_type) {
  H5Id space(w.check(H5Screate(H5S_SCALAR), "attribute dataspace"), H5Sclose);
  H5Id attr(w.check(H5Acreate2(obj, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                    "create attribute '" + name + "'"),
            H5Aclose);
  if (mem_type == H5T_NATIVE_INT32) {
    const int32_t v = static_cast<int32_t>(value);
    w.check_rc(H5Awrite(attr.get(), mem_type, &v), "write attribute '" + name + "'");
  } else {
    w.check_rc(H5Awrite(attr.get(), mem_type, &value), "write attribute '" + name + "'");
  }
}

void write_output(const Hdf5Writer& w, hid_t group, const std::string& name,
                  const std::string& text) {
  const std::string what = "output " + name;
  // Fixed-length and null-padded: the stored bytes are exactly the text (variable-length strings
  // would stop at the first NUL). HDF5 has no zero-length string type, so "" is stored as one NUL
  // and the `length` attribute says 0.
  hid_t t = w.check(H5Tcopy(H5T_C_S1), what + " type");
  H5Id type(t, H5Tclose);
  w.check_rc(H5Tset_size(t, std::max<size_t>(text.size(), 1)), what + " type size");
  w.check_rc(H5Tset_strpad(t, H5T_STR_NULLPAD), what + " type padding");
  w.check_rc(H5Tset_cset(t, H5T_CSET_UTF8), what + " type charset");
  H5Id space(w.check(H5Screate(H5S_SCALAR), what + " dataspace"), H5Sclose);
  H5Id ds(w.check(H5Dcreate2(group, name.c_str(), t, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
                  "create " + what),
          H5Dclose);
  std::string padded = text;
  if (padded.empty()) padded.push_back('\0');
  w.check_rc(H5Dwrite(ds.get(), t, H5S_ALL, H5S_ALL, H5P_DEFAULT, padded.data()), "write " + what);
  write_int_attribute(w, ds.get(), "length", static_cast<int64_t>(text.size()), H5T_STD_I64LE,
                      H5T_NATIVE_INT64);
  w.check_rc(ds.close(), "close " + what);
}

// /energy: attribute source, tables samples, phases, steps.
void write_energy(const Hdf5Writer& w, hid_t file, const EnergyReport& e) {
  H5Id group(w.check(H5Gcreate2(file, "energy", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                     "create group /energy"),
             H5Gclose);
  write_string_attribute(w, group.get(), "source", e.source);
  write_table(w, file, "energy/samples", detail::sample_columns(), e.samples);
  write_table(w, file, "energy/phases", detail::phase_energy_columns(), e.phases);
  write_table(w, file, "energy/steps", detail::step_energy_columns(), e.steps);
}

void write_file(const RunReport& report, const fs::path& tmp, const std::string& shown_path,
                bool keep_outputs) {
  const Hdf5Writer w(shown_path);
  for (const auto& [key, value] : report.attrs.extra) {
    if (key.empty()) w.fail("extra attribute with an empty name");
    if (std::find(kFixedAttributes.begin(), kFixedAttributes.end(), key) != kFixedAttributes.end())
      w.fail("extra attribute '" + key + "' collides with a fixed attribute");
  }
  H5Id fapl = unlocked_file_access();
  w.check(fapl.get(), "file access properties");
  H5Id file(w.check(H5Fcreate(tmp.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()),
                    "create " + tmp.string()),
            H5Fclose);
  const hid_t f = file.get();
  const RunAttributes& a = report.attrs;
  write_string_attribute(w, f, "flowrank_version", a.flowrank_version);
  write_string_attribute(w, f, "job_name", a.job_name);
  write_string_attribute(w, f, "job_sha256", a.job_sha256);
  write_string_attribute(w, f, "model", a.model);
  write_string_attribute(w, f, "device", a.device);
  write_int_attribute(w, f, "world_size", a.world_size, H5T_STD_I32LE, H5T_NATIVE_INT32);
  write_string_attribute(w, f, "started_at", a.started_at);
  write_int_attribute(w, f, "report_format", kReportFormat, H5T_STD_I32LE, H5T_NATIVE_INT32);
  for (const auto& [key, value] : a.extra) write_string_attribute(w, f, key, value);

  write_table(w, f, "phases", detail::phase_columns(), report.phases);
  write_table(w, f, "steps", detail::step_columns(), report.steps);
  write_table(w, f, "workflows", detail::workflow_columns(), report.workflows);
  write_table(w, f, "ranks", detail::rank_columns(), report.ranks);
  write_table(w, f, "plan", detail::plan_columns(), report.plan);

  if (report.energy) write_energy(w, f, *report.energy);
  if (keep_outputs) {
    H5Id outputs(w.check(H5Gcreate2(f, "outputs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         "create group /outputs"),
                 H5Gclose);
    H5Id wf_group;
    int32_t current_wf = 0;
    bool have_group = false;
    for (const auto& [key, text] : report.outputs) {  // map order: grouped by workflow
      if (!have_group || key.first != current_wf) {
        const std::string wf_name = std::to_string(key.first);
        wf_group = H5Id(w.check(H5Gcreate2(outputs.get(), wf_name.c_str(), H5P_DEFAULT, H5P_DEFAULT,
                                           H5P_DEFAULT),
                                "create group /outputs/" + wf_name),
                        H5Gclose);
        current_wf = key.first;
        have_group = true;
      }
      write_output(w, wf_group.get(), std::to_string(key.second), text);
    }
  }
  w.check_rc(H5Fflush(f, H5F_SCOPE_GLOBAL), "flush");
  w.check_rc(file.close(), "close");
}

// ---- reading --------------------------------------------------------------------------------

class Hdf5Reader {
 public:
  explicit Hdf5Reader(std::string path) : path_(std::move(path)) {}
  [[noreturn]] void fail(const std::string& problem) const { throw InputError(path_, problem); }
  hid_t check(hid_t id, const std::string& problem) const {
    if (id < 0) fail(problem);
    return id;
  }
  void check_rc(herr_t rc, const std::string& problem) const {
    if (rc < 0) fail(problem);
  }

 private:
  std::string path_;
};

// A table added after report_format 1 (`optional`) reads as empty from a file without it.
template <class R>
std::vector<R> read_table(const Hdf5Reader& r, hid_t file, const char* name,
                          const std::vector<Column<R>>& all_columns, bool optional = false) {
  const std::string where = std::string("/") + name;
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  if (exists <= 0 && optional) return {};
  if (exists <= 0) r.fail("missing dataset " + where);
  H5Id ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) r.fail(where + " is not a dataset");
  H5Id ftype(r.check(H5Dget_type(ds.get()), "cannot read the type of " + where), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_COMPOUND) r.fail(where + " is not a table");
  std::vector<Column<R>> present;  // optional columns a format-1 file lacks keep their defaults
  for (const auto& c : all_columns) {
    if (H5Tget_member_index(ftype.get(), c.name) >= 0)
      present.push_back(c);
    else if (!c.optional)
      r.fail(where + " has no column '" + c.name + "'");
  }
  H5Id space(r.check(H5Dget_space(ds.get()), "cannot read the shape of " + where), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1) r.fail(where + " is not one-dimensional");
  hsize_t dims[1] = {0};
  r.check(H5Sget_simple_extent_dims(space.get(), dims, nullptr),
          "cannot read the shape of " + where);
  std::vector<R> rows(static_cast<size_t>(dims[0]));
  if (rows.empty()) return rows;

  H5Id str = vlen_utf8_type();
  r.check(str.get(), "string type");
  H5Id mem = compound_type(present, false, str);
  r.check(mem.get(), where + " memory type");
  size_t row_size = 0;
  const std::vector<size_t> offsets = memory_offsets(present, &row_size);
  std::vector<unsigned char> buf(rows.size() * row_size, 0);
  r.check_rc(H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()),
             "cannot read " + where);
  // Frees the strings HDF5 allocated, also when a conversion below throws.
  struct Reclaim {
    hid_t type, space;
    void* buf;
    ~Reclaim() {
#if H5_VERSION_GE(1, 12, 0)
      H5Treclaim(type, space, H5P_DEFAULT, buf);
#else  // 1.10 declares H5Treclaim but does not export it
      H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
    }
  } reclaim{mem.get(), space.get(), buf.data()};

  for (size_t i = 0; i < rows.size(); ++i) {
    const unsigned char* row = buf.data() + i * row_size;
    for (size_t c = 0; c < present.size(); ++c) {
      std::visit(
          [&](auto member) {
            auto& value = rows[i].*member;
            using V = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<V, std::string>) {
              const char* p = nullptr;
              std::memcpy(&p, row + offsets[c], sizeof p);
              value = p ? std::string(p) : std::string();
            } else {
              std::memcpy(&value, row + offsets[c], sizeof value);
            }
          },
          present[c].member);
    }
  }
  return rows;
}

std::string read_string_attribute(const Hdf5Reader& r, hid_t attr, const std::string& name) {
  H5Id ftype(r.check(H5Aget_type(attr), "cannot read attribute '" + name + "'"), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_STRING) r.fail("attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    H5Id str = vlen_utf8_type();
    char* p = nullptr;
    r.check_rc(H5Aread(attr, str.get(), &p), "cannot read attribute '" + name + "'");
    std::string value = p ? std::string(p) : std::string();
    if (p) H5free_memory(p);
    return value;
  }
  const size_t size = H5Tget_size(ftype.get());
  std::string value(size, '\0');
  r.check_rc(H5Aread(attr, ftype.get(), value.data()), "cannot read attribute '" + name + "'");
  value.resize(std::strlen(value.c_str()));
  return value;
}

int64_t read_int_attribute(const Hdf5Reader& r, hid_t attr, const std::string& name) {
  H5Id ftype(r.check(H5Aget_type(attr), "cannot read attribute '" + name + "'"), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_INTEGER)
    r.fail("attribute '" + name + "' is not an integer");
  int64_t v = 0;
  r.check_rc(H5Aread(attr, H5T_NATIVE_INT64, &v), "cannot read attribute '" + name + "'");
  return v;
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

void read_attributes(const Hdf5Reader& r, hid_t file, RunAttributes& a) {
  std::vector<std::string> names;
  hsize_t index = 0;
  r.check_rc(H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &index, collect_attribute_name, &names),
             "cannot list root attributes");
  std::set<std::string> seen;
  for (const std::string& name : names) {
    H5Id attr(r.check(H5Aopen(file, name.c_str(), H5P_DEFAULT),
                      "cannot open root attribute '" + name + "'"),
              H5Aclose);
    seen.insert(name);
    if (name == "world_size") {
      a.world_size = static_cast<int32_t>(read_int_attribute(r, attr.get(), name));
    } else if (name == "report_format") {
      const int64_t v = read_int_attribute(r, attr.get(), name);
      if (v < 1 || v > kReportFormat)
        r.fail("report_format " + std::to_string(v) + " is not supported (this build reads 1 to " +
               std::to_string(kReportFormat) + ")");
    } else {
      std::string value = read_string_attribute(r, attr.get(), name);
      if (name == "flowrank_version")
        a.flowrank_version = std::move(value);
      else if (name == "job_name")
        a.job_name = std::move(value);
      else if (name == "job_sha256")
        a.job_sha256 = std::move(value);
      else if (name == "model")
        a.model = std::move(value);
      else if (name == "device")
        a.device = std::move(value);
      else if (name == "started_at")
        a.started_at = std::move(value);
      else
        a.extra[name] = std::move(value);
    }
  }
  if (!seen.count("world_size")) r.fail("missing root attribute world_size");
}

// The names of a group's links, in name order.
std::vector<std::string> link_names(const Hdf5Reader& r, hid_t group, const std::string& where) {
  H5G_info_t info;
  r.check_rc(H5Gget_info(group, &info), "cannot list " + where);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    r.check(static_cast<hid_t>(len), "cannot list " + where);
    std::string name(static_cast<size_t>(len) + 1, '\0');
    r.check(static_cast<hid_t>(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i,
                                                  name.data(), name.size(), H5P_DEFAULT)),
            "cannot list " + where);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

int32_t parse_index(const Hdf5Reader& r, const std::string& name, const std::string& where) {
  int32_t v = 0;
  const char* end = name.data() + name.size();
  auto [p, ec] = std::from_chars(name.data(), end, v);
  if (name.empty() || ec != std::errc() || p != end || std::to_string(v) != name)
    r.fail(where + ": name is not an integer index");
  return v;
}

std::string read_output(const Hdf5Reader& r, hid_t group, const std::string& name,
                        const std::string& where) {
  H5Id ds(r.check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), where + " is not a dataset"),
          H5Dclose);
  H5Id ftype(r.check(H5Dget_type(ds.get()), "cannot read the type of " + where), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_STRING || H5Tis_variable_str(ftype.get()) > 0)
    r.fail(where + " is not a fixed-length string");
  H5Id space(r.check(H5Dget_space(ds.get()), "cannot read the shape of " + where), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) r.fail(where + " is not a scalar");
  const size_t size = H5Tget_size(ftype.get());
  std::string text(size, '\0');
  r.check_rc(H5Dread(ds.get(), ftype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()),
             "cannot read " + where);
  if (H5Aexists(ds.get(), "length") > 0) {
    H5Id attr(r.check(H5Aopen(ds.get(), "length", H5P_DEFAULT), "cannot read " + where + " length"),
              H5Aclose);
    const int64_t len = read_int_attribute(r, attr.get(), where + " length");
    if (len < 0 || static_cast<uint64_t>(len) > size) r.fail(where + ": length out of range");
    text.resize(static_cast<size_t>(len));
  } else {  // written by another tool: null padding ends the text
    text.resize(text.find_last_not_of('\0') + 1);
  }
  return text;
}

void read_energy(const Hdf5Reader& r, hid_t file, RunReport& report) {
  if (H5Lexists(file, "energy", H5P_DEFAULT) <= 0) return;
  H5Id group(r.check(H5Gopen2(file, "energy", H5P_DEFAULT), "/energy is not a group"), H5Gclose);
  EnergyReport e;
  if (H5Aexists(group.get(), "source") > 0) {
    H5Id attr(r.check(H5Aopen(group.get(), "source", H5P_DEFAULT), "cannot read /energy source"),
              H5Aclose);
    e.source = read_string_attribute(r, attr.get(), "/energy source");
  }
  e.samples = read_table(r, file, "energy/samples", detail::sample_columns());
  e.phases = read_table(r, file, "energy/phases", detail::phase_energy_columns());
  e.steps = read_table(r, file, "energy/steps", detail::step_energy_columns());
  report.energy = std::move(e);
}

void read_outputs(const Hdf5Reader& r, hid_t file, RunReport& report) {
  if (H5Lexists(file, "outputs", H5P_DEFAULT) <= 0) return;
  H5Id outputs(r.check(H5Gopen2(file, "outputs", H5P_DEFAULT), "/outputs is not a group"),
               H5Gclose);
  for (const std::string& wf_name : link_names(r, outputs.get(), "/outputs")) {
    const std::string wf_where = "/outputs/" + wf_name;
    const int32_t wf = parse_index(r, wf_name, wf_where);
    H5Id group(r.check(H5Gopen2(outputs.get(), wf_name.c_str(), H5P_DEFAULT),
                       wf_where + " is not a group"),
               H5Gclose);
    for (const std::string& step_name : link_names(r, group.get(), wf_where)) {
      const std::string where = wf_where + "/" + step_name;
      const int32_t step = parse_index(r, step_name, where);
      report.outputs[{wf, step}] = read_output(r, group.get(), step_name, where);
    }
  }
}

}  // namespace

void write_report_hdf5(const RunReport& report, const fs::path& path, bool keep_outputs) {
  const QuietHdf5Errors quiet;
  write_file_atomic_with(
      path, [&](const fs::path& tmp) { write_file(report, tmp, path.string(), keep_outputs); });
}

RunReport read_report_hdf5(const fs::path& path) {
  const QuietHdf5Errors quiet;
  const Hdf5Reader r(path.string());
  std::error_code ec;
  if (!fs::exists(path, ec)) r.fail("cannot read: no such file");
  if (fs::is_directory(path, ec)) r.fail("is a directory, expected a file");
  if (std::FILE* probe = std::fopen(path.c_str(), "rb")) {
    std::fclose(probe);
  } else {
    r.fail(std::string("cannot read: ") + std::strerror(errno));
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) r.fail("not an HDF5 file");
  H5Id fapl = unlocked_file_access();
  r.check(fapl.get(), "cannot set up HDF5 file access");
  H5Id file(r.check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), "not an HDF5 file"),
            H5Fclose);
  RunReport report;
  read_attributes(r, file.get(), report.attrs);
  report.phases = read_table(r, file.get(), "phases", detail::phase_columns());
  report.steps = read_table(r, file.get(), "steps", detail::step_columns());
  report.workflows = read_table(r, file.get(), "workflows", detail::workflow_columns());
  report.ranks = read_table(r, file.get(), "ranks", detail::rank_columns(), true);
  report.plan = read_table(r, file.get(), "plan", detail::plan_columns(), true);
  read_energy(r, file.get(), report);
  read_outputs(r, file.get(), report);
  return report;
}

}  // namespace flowrank::report
