#include "profile/value.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "profile/toml_reader.hpp"

namespace butter::launcher::profile {

std::string render_loc(const SourceLoc& loc) {
    std::string s = loc.file;
    if (loc.line > 0) s += ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
    return s;
}

std::string Diagnostic::render() const {
    std::string s = render_loc(loc) + ": ";
    if (severity == Severity::Warning) s += "warning: ";
    if (severity == Severity::Note) s += "note: ";
    s += message;
    // A profile with no file of its own to open: how to see it.
    if (loc.file == kEmbeddedDefaultName)
        s += " (a line of the shipped profiles/default.toml, built in; butter show -p "
             "builtin:default prints it resolved)";
    return s;
}

bool has_errors(const Diagnostics& d) {
    for (const auto& x : d)
        if (x.is_error()) return true;
    return false;
}

const Value* Value::find(std::string_view key) const {
    for (const auto& [k, v] : table)
        if (k == key) return &v;
    return nullptr;
}

Value* Value::find(std::string_view key) {
    for (auto& [k, v] : table)
        if (k == key) return &v;
    return nullptr;
}

Value& Value::set(std::string key, Value v) {
    if (Value* old = find(key)) return *old = std::move(v);
    table.emplace_back(std::move(key), std::move(v));
    return table.back().second;
}

bool Value::erase(std::string_view key) {
    for (auto it = table.begin(); it != table.end(); ++it) {
        if (it->first == key) {
            table.erase(it);
            return true;
        }
    }
    return false;
}

const char* kind_name(Value::Kind k) {
    switch (k) {
        case Value::Kind::String:
            return "a string";
        case Value::Kind::Integer:
            return "an integer";
        case Value::Kind::Float:
            return "a float";
        case Value::Kind::Boolean:
            return "a boolean";
        case Value::Kind::Array:
            return "an array";
        case Value::Kind::Table:
            return "a table";
        case Value::Kind::Other:
            return "a date/time";
    }
    return "?";
}

void merge_into(Value& base, const Value& over) {
    if (!base.is_table() || !over.is_table()) {
        base = over;
        return;
    }
    for (const auto& [k, v] : over.table) {
        Value* b = base.find(k);
        if (b && b->is_table() && v.is_table()) {
            merge_into(*b, v);
        } else {
            base.set(k, v);
        }
    }
}

std::string to_toml(const Value& v) {
    switch (v.kind) {
        case Value::Kind::String:
            return toml_quote(v.string);
        case Value::Kind::Integer:
            return std::to_string(v.integer);
        case Value::Kind::Float: {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.17g", v.floating);
            return buf;
        }
        case Value::Kind::Boolean:
            return v.boolean ? "true" : "false";
        case Value::Kind::Array: {
            std::string s = "[";
            for (std::size_t i = 0; i < v.array.size(); ++i)
                s += (i ? ", " : "") + to_toml(v.array[i]);
            return s + "]";
        }
        case Value::Kind::Table: {
            std::string s = "{ ";
            for (std::size_t i = 0; i < v.table.size(); ++i) {
                const auto& [k, c] = v.table[i];
                // A bare key where TOML allows one (letters, digits, '-', '_').
                bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char ch) {
                    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
                });
                s += (i ? ", " : "") + (bare ? k : toml_quote(k)) + " = " + to_toml(c);
            }
            return s + (v.table.empty() ? "}" : " }");
        }
        case Value::Kind::Other:
            return "\"\"";
    }
    return "";
}

}  // namespace butter::launcher::profile
