#pragma once
// Number formatting shared by the report's text outputs.
#include <cstdio>
#include <string>

namespace flowrank::report::detail {

// `v` with `decimals` digits after the point ("%.*f").
inline std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace flowrank::report::detail
