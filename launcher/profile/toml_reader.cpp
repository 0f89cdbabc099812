#include "profile/toml_reader.hpp"

// Header-only: the parser is compiled into this file (the one user of toml++).
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace butter::launcher::profile {

namespace {

SourceLoc loc_of(const toml::node& n, const std::string& file) {
    const auto& s = n.source();
    return {file, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)};
}

Value convert(const toml::node& n, const std::string& file) {
    Value v;
    v.loc = loc_of(n, file);
    if (auto* t = n.as_table()) {
        v.kind = Value::Kind::Table;
        for (auto&& [k, child] : *t) {
            Value c = convert(child, file);
            const auto& ks = k.source();
            c.key_loc = ks.begin.line ? SourceLoc{file, static_cast<int>(ks.begin.line),
                                                  static_cast<int>(ks.begin.column)}
                                      : c.loc;
            v.table.emplace_back(std::string(k.str()), std::move(c));
        }
    } else if (auto* a = n.as_array()) {
        v.kind = Value::Kind::Array;
        for (auto&& child : *a)
            v.array.push_back(convert(child, file));
    } else if (auto* s = n.as_string()) {
        v.kind = Value::Kind::String;
        v.string = s->get();
    } else if (auto* i = n.as_integer()) {
        v.kind = Value::Kind::Integer;
        v.integer = i->get();
    } else if (auto* f = n.as_floating_point()) {
        v.kind = Value::Kind::Float;
        v.floating = f->get();
    } else if (auto* b = n.as_boolean()) {
        v.kind = Value::Kind::Boolean;
        v.boolean = b->get();
    } else {
        v.kind = Value::Kind::Other;  // dates and times: no key takes them
    }
    return v;
}

// toml++ puts a table's position at its header; a key's own position is better for messages
// about the key, so record each key's position on its value when the value has none.
void fix_key_positions(const toml::table& t, Value& v, const std::string& file) {
    for (auto&& [k, child] : t) {
        Value* cv = v.find(k.str());
        if (!cv) continue;
        const auto& ks = k.source();
        if (ks.begin.line != 0 && cv->kind == Value::Kind::Table && cv->loc.line == 0)
            cv->loc = {file, static_cast<int>(ks.begin.line), static_cast<int>(ks.begin.column)};
        if (auto* ct = child.as_table()) fix_key_positions(*ct, *cv, file);
    }
}

}  // namespace

std::optional<Value> parse_toml(std::string_view text, const std::string& file, Diagnostics& out) {
    try {
        toml::table t = toml::parse(text, file);
        Value v = convert(t, file);
        v.loc = {file, 1, 1};
        fix_key_positions(t, v, file);
        return v;
    } catch (const toml::parse_error& e) {
        const auto& b = e.source().begin;
        std::string msg(e.description());
        out.push_back(error_at({file, static_cast<int>(b.line), static_cast<int>(b.column)},
                               "TOML syntax: " + msg));
        return std::nullopt;
    }
}

std::optional<Value> read_toml_file(const std::string& path, Diagnostics& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        out.push_back(
            error_at({path, 0, 0}, std::string("cannot read profile: ") + std::strerror(errno)));
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_toml(ss.str(), path, out);
}

std::string toml_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

}  // namespace butter::launcher::profile
