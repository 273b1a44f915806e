// Chat templates: rather than run Jinja, recognise the two template families the engine supports
// and reproduce what their Jinja renders for one user turn plus the assistant prefix. ChatML
// templates may carry a default system message in a string literal (SmolLM2, Qwen2); it is read
// from the template itself so the text matches byte for byte.
#include <vector>

#include "tokenizer_impl.hpp"

namespace flowrank::engine::tokenizer_detail {
namespace {

// String literals inside {{ }} and {% %} blocks, with Python/Jinja escapes undone.
std::vector<std::string> template_literals(std::string_view t) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < t.size()) {
    std::size_t open = t.find('{', i);
    if (open == std::string_view::npos || open + 1 >= t.size()) break;
    char kind = t[open + 1];
    if (kind != '{' && kind != '%') {
      i = open + 1;
      continue;
    }
    const std::string_view close = kind == '{' ? "}}" : "%}";
    std::size_t j = open + 2;
    while (j < t.size() && t.compare(j, 2, close) != 0) {
      char q = t[j];
      if (q != '\'' && q != '"') {
        ++j;
        continue;
      }
      std::string lit;
      ++j;
      while (j < t.size() && t[j] != q) {
        if (t[j] == '\\' && j + 1 < t.size()) {
          char e = t[++j];
          switch (e) {
            case 'n':
              lit += '\n';
              break;
            case 't':
              lit += '\t';
              break;
            case 'r':
              lit += '\r';
              break;
            default:
              lit += e;
              break;  // \\ \' \"
          }
        } else {
          lit += t[j];
        }
        ++j;
      }
      out.push_back(std::move(lit));
      ++j;
    }
    i = j + 2;
  }
  return out;
}

// Jinja's trim is Python's str.strip(): ASCII whitespace, \x1c-\x1f and Unicode White_Space.
constexpr std::string_view kPySpaces[] = {
    "\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81",
    "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86",
    "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8",
    "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"};

std::size_t leading_space(std::string_view s) {
  if (s.empty()) return 0;
  auto c = static_cast<unsigned char>(s[0]);
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
  for (auto sp : kPySpaces) {
    if (s.substr(0, sp.size()) == sp) return sp.size();
  }
  return 0;
}

std::size_t trailing_space(std::string_view s) {
  if (s.empty()) return 0;
  auto c = static_cast<unsigned char>(s.back());
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
  for (auto sp : kPySpaces) {
    if (s.size() >= sp.size() && s.substr(s.size() - sp.size()) == sp) return sp.size();
  }
  return 0;
}

std::string_view trim(std::string_view s) {
  for (std::size_t n; (n = leading_space(s)) > 0;) s.remove_prefix(n);
  for (std::size_t n; (n = trailing_space(s)) > 0;) s.remove_suffix(n);
  return s;
}

// Whether the template filters a message's content through `trim` ("content'] | trim",
// "content|trim", ...), rather than some other value.
bool trims_content(std::string_view t) {
  for (std::size_t at = t.find("content"); at != std::string_view::npos;
       at = t.find("content", at + 1)) {
    std::size_t i = at + 7;
    while (i < t.size() && (t[i] == '\'' || t[i] == '"' || t[i] == ']' || t[i] == ' ')) ++i;
    if (i >= t.size() || t[i] != '|') continue;
    ++i;
    while (i < t.size() && t[i] == ' ') ++i;
    if (t.compare(i, 4, "trim") == 0) return true;
  }
  return false;
}

}  // namespace

ChatFormat parse_chat_template(std::string_view tmpl) {
  ChatFormat f;
  if (tmpl.empty()) return f;
  f.trim_content = trims_content(tmpl);
  if (tmpl.find("<|im_start|>") != std::string_view::npos) {
    for (const std::string& lit : template_literals(tmpl)) {
      const std::string_view head = "<|im_start|>system\n";
      std::size_t at = lit.find(head);
      if (at == std::string::npos) continue;
      std::size_t end = lit.find("<|im_end|>", at + head.size());
      if (end == std::string::npos) {
        f.unsupported = "its default system message is assembled from several pieces";
        return f;
      }
      f.default_system = lit.substr(at + head.size(), end - at - head.size());
      break;
    }
    f.kind = ChatFormat::Kind::kChatMl;
    return f;
  }
  if (tmpl.find("<|start_header_id|>") != std::string_view::npos) {
    if (tmpl.find("Cutting Knowledge Date") != std::string_view::npos ||
        tmpl.find("date_string") != std::string_view::npos) {
      f.unsupported = "Llama 3.1+ templates with a dated system prompt are not supported";
      return f;
    }
    f.kind = ChatFormat::Kind::kLlama3;
    return f;
  }
  f.unsupported = "neither ChatML (<|im_start|>) nor Llama-3 (<|start_header_id|>)";
  return f;
}

std::string render_chat(const ChatFormat& f, std::string_view user_message) {
  std::string_view content = f.trim_content ? trim(user_message) : user_message;
  std::string out;
  if (f.kind == ChatFormat::Kind::kChatMl) {
    if (f.default_system) out += "<|im_start|>system\n" + *f.default_system + "<|im_end|>\n";
    out += "<|im_start|>user\n";
    out += content;
    out += "<|im_end|>\n<|im_start|>assistant\n";
  } else {
    // The template's leading bos_token is left out: encode(add_bos = true) supplies BOS.
    out += "<|start_header_id|>user<|end_header_id|>\n\n";
    out += content;
    out += "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  }
  return out;
}

}  // namespace flowrank::engine::tokenizer_detail
