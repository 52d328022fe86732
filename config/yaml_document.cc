#include "config/yaml_document.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "config/quote.h"

namespace corral::config {
namespace {

// The documents of a YAML stream as events: where each starts and whether
// it holds anything. YAML::LoadAll cannot be used: yaml-cpp 0.7 hands out
// an endless run of empty documents, without reading on, when a document
// starts with a token that cannot start a node (a stray ',': "," or
// ",}\n{"), and LoadAll collects them until memory runs out (yaml-cpp
// issue 1040, fixed in 0.8.0).
class DocumentScan : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark mark;  // of its root node
    bool empty = true;
    bool has_root = false;
  };
  // The documents of TEXT; nullopt, with MARK set, where yaml-cpp is stuck.
  // Throws what yaml-cpp throws for bad syntax.
  std::optional<std::vector<Document>> scan(const std::string& text, YAML::Mark& mark) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(*this)) {
      const Document& last = documents_.back();
      // An empty document where the one before it was: nothing was read.
      if (last.empty && documents_.size() > 1 && same(documents_[documents_.size() - 2], last)) {
        mark = last.mark;
        return std::nullopt;
      }
    }
    return std::move(documents_);
  }

  void OnDocumentStart(const YAML::Mark& mark) override { documents_.push_back({mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark, false);
  }
  void OnMapEnd() override {}

 private:
  // The first node of a document is its root; the rest is inside it.
  void node(const YAML::Mark& mark, bool null) {
    Document& d = documents_.back();
    if (d.has_root) return;
    d.has_root = true;
    d.mark = mark;
    d.empty = null;
  }
  static bool same(const Document& a, const Document& b) {
    return a.empty && a.mark.pos == b.mark.pos;
  }

  std::vector<Document> documents_;
};

// Whether line LINE (0-based) of TEXT, or the one before, is indented with a
// tab: yaml-cpp's message for that ("illegal map value") does not say so.
bool tab_indented_near(const std::string& text, int line) {
  int current = 0;
  size_t start = 0;
  while (start < text.size() && current <= line) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (current >= line - 1) {
      for (size_t i = start; i < end && (text[i] == ' ' || text[i] == '\t'); ++i) {
        if (text[i] == '\t') return true;
      }
    }
    start = end + 1;
    ++current;
  }
  return false;
}

// Thrown out of yaml-cpp's parser by ValueCounter.
struct TooManyValues {
  YAML::Mark mark;
};

// Counts the values of a YAML stream as its events go by, without building
// a tree, and stops the parser past kMaxValues.
class ValueCounter : public YAML::EventHandler {
 public:
  explicit ValueCounter(size_t limit) : limit_(limit) {}
  size_t count() const { return count_; }
  // The last scalar's place: the one value an unclosed quote can run into.
  const std::optional<YAML::Mark>& last_scalar() const { return last_scalar_; }

  void OnDocumentStart(const YAML::Mark&) override { anchored_.clear(); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { add(mark, anchor, 1); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // An alias of a collection still open (a cycle) counts once.
    auto found = anchored_.find(anchor);
    add(mark, YAML::NullAnchor, found == anchored_.end() ? 1 : found->second);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    last_scalar_ = mark;
    add(mark, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  void add(const YAML::Mark& mark, YAML::anchor_t anchor, size_t values) {
    count_ += values;
    if (count_ > limit_) throw TooManyValues{mark};
    if (anchor != YAML::NullAnchor) anchored_[anchor] = values;
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, YAML::NullAnchor, 1);
    open_.emplace_back(anchor, count_ - 1);
  }
  void close() {
    if (open_.empty()) return;
    auto [anchor, start] = open_.back();
    open_.pop_back();
    if (anchor != YAML::NullAnchor) anchored_[anchor] = count_ - start;
  }

  size_t limit_;
  size_t count_ = 0;
  std::map<YAML::anchor_t, size_t> anchored_;            // anchor -> values it stands for
  std::vector<std::pair<YAML::anchor_t, size_t>> open_;  // open collections: anchor, count before
  std::optional<YAML::Mark> last_scalar_;
};

// The place of the opening quote of the scalar at MARK when that quote is
// never closed. yaml-cpp accepts such a scalar when the file ends with a
// newline, and it then silently holds the rest of the file.
std::optional<YAML::Mark> unclosed_quote(const std::string& text, const YAML::Mark& mark) {
  size_t i = static_cast<size_t>(mark.pos);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i += 3;  // yaml-cpp's positions skip a BOM
  int line = mark.line;
  int column = mark.column;
  // Skip the node's properties (&anchor, !tag) to its content.
  while (i < text.size() && (text[i] == '&' || text[i] == '!' || text[i] == ' ' ||
                             text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    if (text[i] == '&' || text[i] == '!') {
      while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') {
        ++i;
        ++column;
      }
    } else if (text[i] == '\n') {
      ++i;
      ++line;
      column = 0;
    } else {
      ++i;
      ++column;
    }
  }
  if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return std::nullopt;
  char quote = text[i];
  YAML::Mark start = mark_at(i, line, column);
  for (size_t k = i + 1; k < text.size(); ++k) {
    if (quote == '"' && text[k] == '\\') {
      ++k;
    } else if (text[k] == quote) {
      if (quote == '\'' && k + 1 < text.size() && text[k + 1] == '\'') {
        ++k;  // '' is a quote inside single quotes
      } else {
        return std::nullopt;
      }
    }
  }
  return start;
}

}  // namespace

std::string syntax_hint(const std::string& message, const std::string& text, const YAML::Mark& at,
                        const FlowScan& flow) {
  namespace E = YAML::ErrorMsg;
  if (at.line >= 0 && tab_indented_near(text, at.line)) {
    return " (a tab in the indentation? YAML indents with spaces only)";
  }
  // A quote never closed runs to the end, where yaml-cpp then misses a bracket.
  if ((message == E::EOF_IN_SCALAR || message == E::END_OF_SEQ_FLOW ||
       message == E::END_OF_MAP_FLOW) &&
      flow.open_quote) {
    const YAML::Mark& open = *flow.open_quote;
    return std::string(" (the ") + text[open.pos] + " at line " + std::to_string(open.line + 1) +
           ", column " + std::to_string(open.column + 1) + " is never closed)";
  }
  if (message == E::END_OF_SEQ_FLOW || message == E::END_OF_MAP_FLOW) {
    char opening = message == E::END_OF_SEQ_FLOW ? '[' : '{';
    char closing = opening == '[' ? ']' : '}';
    if (!flow.unclosed.empty() && flow.unclosed.back().first == opening) {
      const YAML::Mark& open = flow.unclosed.back().second;
      return std::string(" (the ") + opening + " at line " + std::to_string(open.line + 1) +
             ", column " + std::to_string(open.column + 1) + " has no closing " + closing + ")";
    }
    return std::string(" (a ") + opening + " without its closing " + closing + ")";
  }
  if (message == E::FLOW_END) return " (a ] or } without its opening [ or {)";
  if (message == E::MAP_VALUE) {
    return " (check the indentation of this line, or quote a value that holds \": \")";
  }
  if (message == E::END_OF_MAP || message == E::END_OF_SEQ) {
    return " (check the indentation: the keys of one map, and the items of one list, line up)";
  }
  if (message == E::BLOCK_ENTRY) return " (a \"- \" list item where a key was expected?)";
  if (message.rfind(E::INVALID_ESCAPE, 0) == 0) {
    return " (in double quotes a backslash starts an escape: write \\\\, or use single quotes)";
  }
  if (message == E::UNKNOWN_TOKEN) return " (a value cannot start with @ or `; quote it)";
  if (message == E::UNKNOWN_ANCHOR) return " (an alias *name needs an anchor &name before it)";
  return "";
}

std::optional<YAML::Node> parse_yaml(Reader& reader, const std::string& text, size_t& values_left) {
  if (auto bad = find_non_text(text)) {
    reader.error(bad->first, bad->second);
    return std::nullopt;
  }
  FlowScan flow = scan_flow(text);
  if (flow.too_deep) {
    reader.error(*flow.too_deep, nested_too_deeply(kMaxNesting));
    return std::nullopt;
  }
  std::vector<YAML::Node> documents;
  try {
    // yaml-cpp 0.7 reads some inputs (a stray ',') as endless empty
    // documents: find that first, before any pass that would loop.
    YAML::Mark stuck;
    if (!DocumentScan().scan(text, stuck)) {
      std::string what = static_cast<size_t>(stuck.pos) < text.size()
                             ? quote(text.substr(static_cast<size_t>(stuck.pos), 1))
                             : std::string("the end of the file");
      reader.error(stuck, "YAML syntax error: unexpected " + what);
      return std::nullopt;
    }
    // A first pass over the events finds syntax errors and counts the
    // values, before a tree of them is built.
    ValueCounter counter(values_left);
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(counter)) {
    }
    values_left -= counter.count();
    if (counter.last_scalar()) {
      if (auto open = unclosed_quote(text, *counter.last_scalar())) {
        reader.error(*open, std::string("YAML syntax error: the ") + text[open->pos] +
                                " that starts this value is never closed, so the value runs "
                                "to the end of the file");
        return std::nullopt;
      }
    }
    documents = YAML::LoadAll(text);
  } catch (const TooManyValues& e) {
    reader.error(e.mark, "the config holds more than " + std::to_string(kMaxValues) +
                             " values, counting its included files and each alias as the "
                             "values it repeats; a config this large is a mistake");
    return std::nullopt;
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp words this "bad file".
    reader.error(e.mark, nested_too_deeply(e.depth()));
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    reader.error(e.mark, "YAML syntax error: " + e.msg + syntax_hint(e.msg, text, e.mark, flow));
    return std::nullopt;
  }
  if (documents.empty()) return YAML::Node();
  for (size_t i = 1; i < documents.size(); ++i) {
    if (!documents[i].IsNull()) {
      reader.error(documents[i].Mark(), "a config file holds one YAML document; this is another");
    }
  }
  return documents[0];
}

}  // namespace corral::config
