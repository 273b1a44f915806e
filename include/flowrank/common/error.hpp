#pragma once
// Errors that reach the user as one line. InputError means "the input named here is bad" and maps
// to exit code 2; anything else that escapes is an internal or resource failure (exit code 1).
#include <stdexcept>
#include <string>

namespace flowrank {

class InputError : public std::runtime_error {
 public:
  // `where` is the file (optionally with a key, tensor or line); `problem` says what is wrong.
  InputError(const std::string& where, const std::string& problem)
      : std::runtime_error(where + ": " + problem), where_(where) {}
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

// Out of memory, a dead rank, a signal: not the input's fault, but still one clear line.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace flowrank
