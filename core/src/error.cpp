#include "butter/error.hpp"

#include <cstdio>
#include <cstring>

namespace butter {

std::string Error::what() const {
    std::string s = call_;
    if (!context_.empty()) {
        s += "(\"";
        s += context_;
        s += "\")";
    }
    s += ": ";
    if (errno_ != 0) {
        s += strerrordesc_np(errno_) ? strerrordesc_np(errno_) : "Unknown error";
        if (!message_.empty()) {
            s += " (";
            s += message_;
            s += ")";
        }
    } else {
        s += message_;
    }
    if (!hint_.empty()) {
        s += " \u2014 hint: ";
        s += hint_;
    }
    return s;
}

void result_access_failed(const Error& e) noexcept {
    std::fprintf(stderr, "butter: value() of a failed Result: %s\n", e.what().c_str());
    std::abort();
}

}  // namespace butter
