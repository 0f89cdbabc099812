#include "profile/tree_codec.hpp"

#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

namespace butter::launcher::profile {

namespace {

constexpr std::string_view kMagic = "BTREE1";
constexpr int kMaxDepth = 64;

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

void put_string(std::string& out, std::string_view s) {
    put_varint(out, s.size());
    out += s;
}

struct Encoder {
    std::string out;
    std::map<std::string, std::uint64_t> files;

    std::uint64_t file_index(const std::string& f) {
        auto [it, added] = files.emplace(f, files.size());
        return it->second;
    }
    void loc(const SourceLoc& l) {
        put_varint(out, file_index(l.file));
        put_varint(out, static_cast<std::uint32_t>(l.line));
        put_varint(out, static_cast<std::uint32_t>(l.column));
    }
    void node(const Value& v) {
        out += static_cast<char>(v.kind);
        loc(v.loc);
        loc(v.key_loc);
        switch (v.kind) {
            case Value::Kind::String:
                put_string(out, v.string);
                break;
            case Value::Kind::Integer:  // zigzag
                put_varint(out, (static_cast<std::uint64_t>(v.integer) << 1) ^
                                    static_cast<std::uint64_t>(v.integer >> 63));
                break;
            case Value::Kind::Float: {
                char b[sizeof(double)];
                std::memcpy(b, &v.floating, sizeof b);
                out.append(b, sizeof b);
                break;
            }
            case Value::Kind::Boolean:
                out += static_cast<char>(v.boolean ? 1 : 0);
                break;
            case Value::Kind::Array:
                put_varint(out, v.array.size());
                for (const Value& c : v.array)
                    node(c);
                break;
            case Value::Kind::Table:
                put_varint(out, v.table.size());
                for (const auto& [k, c] : v.table) {
                    put_string(out, k);
                    node(c);
                }
                break;
            case Value::Kind::Other:
                break;
        }
    }
};

struct Decoder {
    std::string_view in;
    std::vector<std::string> files;
    bool ok = true;

    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (in.empty()) break;
            auto b = static_cast<unsigned char>(in.front());
            in.remove_prefix(1);
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        ok = false;
        return 0;
    }
    std::string_view bytes(std::uint64_t n) {
        if (n > in.size()) {
            ok = false;
            return {};
        }
        std::string_view s = in.substr(0, n);
        in.remove_prefix(n);
        return s;
    }
    std::string_view string() { return bytes(varint()); }
    int small() {
        std::uint64_t v = varint();
        if (v > 0x7fffffff) ok = false;
        return static_cast<int>(v);
    }
    void loc(SourceLoc& l) {
        std::uint64_t f = varint();
        if (f >= files.size()) {
            ok = false;
            return;
        }
        l.file = files[f];
        l.line = small();
        l.column = small();
    }
    // Each element takes at least one byte: a count beyond what is left is malformed (and
    // would otherwise reserve memory for nothing).
    std::size_t count() {
        std::uint64_t n = varint();
        if (n > in.size()) ok = false;
        return ok ? static_cast<std::size_t>(n) : 0;
    }
    void node(Value& v, int depth) {
        if (depth > kMaxDepth || in.empty()) {
            ok = false;
            return;
        }
        auto kind = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        if (kind > static_cast<unsigned char>(Value::Kind::Other)) {
            ok = false;
            return;
        }
        v.kind = static_cast<Value::Kind>(kind);
        loc(v.loc);
        loc(v.key_loc);
        switch (v.kind) {
            case Value::Kind::String:
                v.string = string();
                break;
            case Value::Kind::Integer: {
                std::uint64_t z = varint();
                v.integer = static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
                break;
            }
            case Value::Kind::Float: {
                std::string_view b = bytes(sizeof(double));
                if (ok) std::memcpy(&v.floating, b.data(), sizeof(double));
                break;
            }
            case Value::Kind::Boolean: {
                std::string_view b = bytes(1);
                if (ok && static_cast<unsigned char>(b[0]) > 1) ok = false;
                v.boolean = ok && b[0] == 1;
                break;
            }
            case Value::Kind::Array:
                v.array.resize(count());
                for (Value& c : v.array)
                    if (ok) node(c, depth + 1);
                break;
            case Value::Kind::Table:
                v.table.resize(count());
                for (auto& [k, c] : v.table) {
                    if (!ok) break;
                    k = string();
                    if (ok) node(c, depth + 1);
                }
                break;
            case Value::Kind::Other:
                break;
        }
    }
};

}  // namespace

std::string encode_tree(const Value& v) {
    Encoder body;
    body.node(v);
    std::vector<const std::string*> names(body.files.size());
    for (const auto& [name, i] : body.files)
        names[i] = &name;
    std::string out(kMagic);
    put_varint(out, names.size());
    for (const std::string* n : names)
        put_string(out, *n);
    return out + body.out;
}

std::optional<Value> decode_tree(std::string_view bytes) {
    if (!bytes.starts_with(kMagic)) return std::nullopt;
    Decoder d{bytes.substr(kMagic.size()), {}};
    std::size_t n = d.count();
    d.files.reserve(n);
    for (std::size_t i = 0; i < n && d.ok; ++i)
        d.files.emplace_back(d.string());
    Value v;
    if (d.ok) d.node(v, 0);
    if (!d.ok || !d.in.empty()) return std::nullopt;
    return v;
}

}  // namespace butter::launcher::profile
