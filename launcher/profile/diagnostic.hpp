// Where a profile value came from, and what is wrong with it: every profile error is printed as
// FILE:LINE:COL: message (the form of compilers, minijail's policy compiler and systemd).
#pragma once

#include <string>
#include <vector>

namespace butter::launcher::profile {

// How diagnostics name the built-in default profile (its lines are those of the shipped
// profiles/default.toml); Diagnostic::render() says how to see it.
inline constexpr const char* kEmbeddedDefaultName = "default (built in)";

struct SourceLoc {
    std::string file;  // a path, "default (built in)", or "--set"
    int line = 0;      // 1-based; 0 when unknown
    int column = 0;
};

struct Diagnostic {
    // Notes are printed by `butter check` (and --verbose), not on every run.
    enum class Severity { Error, Warning, Note };
    SourceLoc loc;
    std::string message;
    Severity severity = Severity::Error;

    bool is_error() const { return severity == Severity::Error; }
    // "FILE:LINE:COL: message" ("FILE: message" without a position; "warning: " before
    // warnings' messages).
    std::string render() const;
};

using Diagnostics = std::vector<Diagnostic>;

inline Diagnostic error_at(SourceLoc loc, std::string message) {
    return {std::move(loc), std::move(message), Diagnostic::Severity::Error};
}
inline Diagnostic warning_at(SourceLoc loc, std::string message) {
    return {std::move(loc), std::move(message), Diagnostic::Severity::Warning};
}
inline Diagnostic note_at(SourceLoc loc, std::string message) {
    return {std::move(loc), std::move(message), Diagnostic::Severity::Note};
}
bool has_errors(const Diagnostics& d);
// "FILE:LINE:COL" (or "FILE" without a position).
std::string render_loc(const SourceLoc& loc);

}  // namespace butter::launcher::profile
