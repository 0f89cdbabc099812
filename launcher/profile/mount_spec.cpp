#include "profile/mount_spec.hpp"

#include <cstdio>
#include <cstdlib>

#include "profile/toml_reader.hpp"
#include "profile/units.hpp"

namespace butter::launcher::profile {

namespace {

using Kind = Value::Kind;

// One key of a mount table into `m`; false (with a diagnostic) when it is wrong.
bool mount_field(const std::string& k, const Value& v, const Expansion& x, MountSpec& m,
                 bool& has_type, Diagnostics& out) {
    auto bad = [&](const std::string& msg) {
        out.push_back(error_at(v.loc, "filesystem.mounts: " + msg));
        return false;
    };
    auto want = [&](Kind kind) {
        return v.kind == kind ||
               bad("'" + k + "' must be " + kind_name(kind) + ", got " + kind_name(v.kind));
    };
    if (k == "type") {
        if (!want(Kind::String)) return false;
        auto t = mount_type(v.string);
        if (!t)
            return bad("unknown mount type '" + v.string +
                       "' (bind, tmpfs, proc, dev, symlink, dir, mqueue, overlay)");
        m.type = *t;
        has_type = true;
    } else if (k == "source") {
        if (!want(Kind::String)) return false;
        m.source = expand(v.string, x);
    } else if (k == "sources") {
        if (!want(Kind::Array)) return false;
        m.sources.clear();
        for (const Value& e : v.array) {
            if (e.kind != Kind::String) {
                out.push_back(error_at(e.loc,
                                       "filesystem.mounts: each of 'sources' must be a "
                                       "string, got " +
                                           std::string(kind_name(e.kind))));
                return false;
            }
            m.sources.push_back(expand(e.string, x));
        }
    } else if (k == "upper") {
        if (!want(Kind::String)) return false;
        m.upper = v.string == "tmpfs" ? v.string : expand(v.string, x);
    } else if (k == "target") {
        if (!want(Kind::String)) return false;
        m.target = expand(v.string, x);
        m.expanded_target = m.target != v.string;
    } else if (k == "read_only" || k == "optional" || k == "follow_symlinks") {
        if (!want(Kind::Boolean)) return false;
        (k == "read_only"  ? m.read_only
         : k == "optional" ? m.optional
                           : m.follow_symlinks) = v.boolean;
    } else if (k == "size") {
        if (v.kind == Kind::Integer) {
            if (v.integer <= 0) return bad("'size' must be a positive size");
            m.size = static_cast<std::uint64_t>(v.integer);
        } else {
            if (!want(Kind::String)) return false;
            auto s = parse_size(v.string);
            if (!s) return bad(s.error().text() + ": '" + v.string + "'");
            m.size = *s;
        }
    } else if (k == "mode") {
        if (!want(Kind::String)) return false;
        char* end = nullptr;
        unsigned long mode = std::strtoul(v.string.c_str(), &end, 8);
        if (v.string.empty() || *end != '\0' || mode > 07777)
            return bad("mode '" + v.string + "' is not an octal mode like \"0755\"");
        m.mode = static_cast<unsigned>(mode);
    } else {
        out.push_back(error_at(v.key_loc, "filesystem.mounts: unknown key '" + k +
                                              "' (type, source, sources, upper, target, "
                                              "read_only, optional, follow_symlinks, size, "
                                              "mode)"));
        return false;
    }
    return true;
}

// What the keys say together (a target, a source where the type needs one, options that apply
// to the type); false when something does not hold.
bool mount_consistent(const Value& e, const MountSpec& m, Diagnostics& out) {
    bool ok = true;
    auto bad = [&](const char* key, const std::string& msg) {
        const Value* at = key ? e.find(key) : nullptr;
        out.push_back(error_at(at ? at->loc : e.loc, "filesystem.mounts: " + msg));
        ok = false;
    };
    if (m.target.empty())
        bad(nullptr, "a mount needs a 'target'");
    else if (m.target[0] != '/')
        bad("target", "target '" + m.target + "' must be an absolute path");
    bool overlay = m.type == MountType::Overlay;
    bool needs_source = m.type == MountType::Bind || m.type == MountType::Symlink;
    if (needs_source && m.source.empty())
        bad(nullptr, std::string("a ") + to_string(m.type) + " mount needs a 'source'");
    if (m.type == MountType::Bind && !m.source.empty() && m.source[0] != '/')
        bad("source", "source '" + m.source + "' must be an absolute path");
    if (!needs_source && !m.source.empty())
        bad("source", std::string(overlay ? "an overlay mount takes 'sources', not 'source'"
                                          : std::string("a ") + to_string(m.type) +
                                                " mount takes no 'source'"));
    if (m.follow_symlinks && m.type != MountType::Bind && m.type != MountType::Overlay)
        bad(nullptr, "'follow_symlinks' applies to bind and overlay mounts only");
    if (m.size && m.type != MountType::Tmpfs && m.type != MountType::Dev &&
        !(overlay && m.upper == "tmpfs"))
        bad(nullptr, "'size' applies to tmpfs and dev mounts, and an overlay's tmpfs upper, only");
    if (!overlay && e.find("sources")) bad("sources", "'sources' applies to overlay mounts only");
    if (!overlay && e.find("upper")) bad("upper", "'upper' applies to overlay mounts only");
    if (overlay) {
        if (m.sources.empty()) bad(nullptr, "an overlay mount needs 'sources' (its lower layers)");
        for (const std::string& s : m.sources)
            if (s.empty() || s[0] != '/')
                bad("sources", "source '" + s + "' must be an absolute path");
        if (m.upper != "tmpfs" && (m.upper.empty() || m.upper[0] != '/'))
            bad("upper", "upper '" + m.upper + "' must be \"tmpfs\" or an absolute path");
        if (m.read_only)
            bad("read_only",
                "an overlay mount is writable (its changes go to 'upper'); bind "
                "its source read-only instead");
        if (m.mode) bad("mode", "'mode' applies to tmpfs, dev and dir mounts only");
    }
    return ok;
}

}  // namespace

std::optional<MountType> mount_type(std::string_view s) {
    if (s == "bind") return MountType::Bind;
    if (s == "tmpfs") return MountType::Tmpfs;
    if (s == "proc") return MountType::Proc;
    if (s == "dev") return MountType::Dev;
    if (s == "symlink") return MountType::Symlink;
    if (s == "dir") return MountType::Dir;
    if (s == "mqueue") return MountType::Mqueue;
    if (s == "overlay") return MountType::Overlay;
    return std::nullopt;
}

std::optional<MountSpec> parse_mount(const Value& e, const Expansion& x, Diagnostics& out) {
    if (!e.is_table()) {
        out.push_back(error_at(
            e.loc,
            std::string("filesystem.mounts: each mount is a table, got ") + kind_name(e.kind)));
        return std::nullopt;
    }
    MountSpec m;
    m.loc = e.loc;
    bool ok = true, has_type = false;
    for (const auto& [k, v] : e.table)
        ok = mount_field(k, v, x, m, has_type, out) && ok;
    if (!has_type) {
        if (!e.find("type"))
            out.push_back(error_at(e.loc, "filesystem.mounts: a mount needs a 'type'"));
        return std::nullopt;
    }
    ok = mount_consistent(e, m, out) && ok;
    return ok ? std::optional(m) : std::nullopt;
}

std::string mount_text(const MountSpec& m) {
    std::string s = "{ type = " + toml_quote(to_string(m.type));
    if (!m.source.empty()) s += ", source = " + toml_quote(m.source);
    if (m.type == MountType::Overlay) {
        s += ", sources = [";
        for (std::size_t i = 0; i < m.sources.size(); ++i)
            s += (i ? ", " : "") + toml_quote(m.sources[i]);
        s += "], upper = " + toml_quote(m.upper);
    }
    s += ", target = " + toml_quote(m.target);
    if (m.read_only) s += ", read_only = true";
    if (m.optional) s += ", optional = true";
    if (m.follow_symlinks) s += ", follow_symlinks = true";
    if (m.size) s += ", size = " + toml_quote(format_size(*m.size));
    if (m.mode) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04o", *m.mode);
        s += ", mode = " + toml_quote(buf);
    }
    return s + " }";
}

}  // namespace butter::launcher::profile
