// A TOML document as a plain tree whose every node remembers its source position. toml_reader
// builds it (the only code that sees toml++); merging (extends, --set), validation and the
// schema work on it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "profile/diagnostic.hpp"

namespace butter::launcher::profile {

struct Value {
    enum class Kind { String, Integer, Float, Boolean, Array, Table, Other };
    Kind kind = Kind::Table;
    std::string string;
    std::int64_t integer = 0;
    double floating = 0;
    bool boolean = false;
    std::vector<Value> array;
    std::vector<std::pair<std::string, Value>> table;  // sorted by key (toml++'s order)
    SourceLoc loc;
    SourceLoc key_loc;  // where the key naming this value is written (its table's entry)

    // User-provided, not defaulted: clang with libstdc++ otherwise recurses into
    // pair<string, Value> while Value is still incomplete (the fuzzing build).
    Value() {}  // NOLINT(modernize-use-equals-default)

    bool is_table() const { return kind == Kind::Table; }
    const Value* find(std::string_view key) const;
    Value* find(std::string_view key);
    // Inserts or replaces `key`.
    Value& set(std::string key, Value v);
    bool erase(std::string_view key);
};

// "string", "integer", "array", ... for messages.
const char* kind_name(Value::Kind k);

// `over` onto `base`: tables merge key by key (recursively), everything else (arrays
// included) replaces.
void merge_into(Value& base, const Value& over);

// Writes a value as TOML inline text (strings quoted and escaped).
std::string to_toml(const Value& v);

}  // namespace butter::launcher::profile
