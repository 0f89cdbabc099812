#include "butter/capabilities.hpp"

#include <linux/securebits.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include <cstdio>

namespace butter {

struct Capabilities::Impl {
    cap_t caps = nullptr;
    ~Impl() {
        if (caps) cap_free(caps);
    }
};

namespace {
cap_flag_t native(CapFlag f) {
    switch (f) {
        case CapFlag::Effective:
            return CAP_EFFECTIVE;
        case CapFlag::Permitted:
            return CAP_PERMITTED;
        case CapFlag::Inheritable:
            return CAP_INHERITABLE;
    }
    return CAP_EFFECTIVE;
}
}  // namespace

CapabilitySet CapabilitySet::all() {
    int last = last_capability();
    return from_bits(last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1);
}

std::vector<int> CapabilitySet::list() const {
    std::vector<int> out;
    for (int c = 0; c < 64; ++c)
        if (has(c)) out.push_back(c);
    return out;
}

std::string CapabilitySet::to_string() const {
    std::string s;
    for (int c : list()) {
        if (!s.empty()) s += ',';
        s += capability_name(c);
    }
    return s;
}

Result<int> capability_from_name(std::string_view name) {
    std::string n(name);
    for (auto& ch : n)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!n.starts_with("cap_")) n = "cap_" + n;
    cap_value_t v;
    if (cap_from_name(n.c_str(), &v) < 0 || v < 0 || v > last_capability())
        return fail(Error::message("cap_from_name", "unknown capability", std::string(name)));
    return static_cast<int>(v);
}

std::string capability_name(int cap) {
    char* n = cap_to_name(static_cast<cap_value_t>(cap));
    if (!n) return "CAP_" + std::to_string(cap);
    std::string s(n);
    cap_free(n);
    for (auto& ch : s)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
}

int last_capability() {
    static const int kLast = [] {
        int v = -1;
        if (FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "re")) {
            if (std::fscanf(f, "%d", &v) != 1) v = -1;
            std::fclose(f);
        }
        return v >= 0 ? v : static_cast<int>(cap_max_bits()) - 1;
    }();
    return kLast;
}

Capabilities::Capabilities(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Capabilities::Capabilities(Capabilities&&) noexcept = default;
Capabilities& Capabilities::operator=(Capabilities&&) noexcept = default;
Capabilities::~Capabilities() = default;

Result<Capabilities> Capabilities::current() {
    auto impl = std::make_unique<Impl>();
    impl->caps = cap_get_proc();
    if (!impl->caps) return fail_errno("cap_get_proc");
    return Capabilities(std::move(impl));
}

Result<Capabilities> Capabilities::empty() {
    auto impl = std::make_unique<Impl>();
    impl->caps = cap_init();
    if (!impl->caps) return fail_errno("cap_init");
    return Capabilities(std::move(impl));
}

bool Capabilities::has(int cap, CapFlag flag) const {
    cap_flag_value_t v = CAP_CLEAR;
    if (cap_get_flag(impl_->caps, static_cast<cap_value_t>(cap), native(flag), &v) < 0)
        return false;
    return v == CAP_SET;
}

CapabilitySet Capabilities::get(CapFlag flag) const {
    CapabilitySet s;
    for (int c = 0; c <= last_capability(); ++c)
        if (has(c, flag)) s.add(c);
    return s;
}

Result<void> Capabilities::set(CapFlag flag, CapabilitySet caps, bool on) {
    std::vector<cap_value_t> list;
    for (int c : caps.list())
        list.push_back(static_cast<cap_value_t>(c));
    if (list.empty()) return {};
    if (cap_set_flag(impl_->caps, native(flag), static_cast<int>(list.size()), list.data(),
                     on ? CAP_SET : CAP_CLEAR) < 0)
        return fail_errno("cap_set_flag", caps.to_string());
    return {};
}

Result<void> Capabilities::apply() const {
    if (cap_set_proc(impl_->caps) < 0) return fail_errno("cap_set_proc", to_text());
    return {};
}

std::string Capabilities::to_text() const {
    char* t = cap_to_text(impl_->caps, nullptr);
    if (!t) return "";
    std::string s(t);
    cap_free(t);
    return s;
}

Result<bool> bounding_has(int cap) {
    int r = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r < 0) return fail_errno("prctl(PR_CAPBSET_READ)", capability_name(cap));
    return r == 1;
}

Result<void> drop_bounding(int cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_CAPBSET_DROP)", capability_name(cap));
    return {};
}

Result<CapabilitySet> bounding_set() {
    CapabilitySet s;
    for (int c = 0; c <= last_capability(); ++c) {
        BUTTER_ASSIGN_OR_RETURN(bool in, bounding_has(c));
        if (in) s.add(c);
    }
    return s;
}

Result<bool> ambient_has(int cap) {
    int r = ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
    if (r < 0) return fail_errno("prctl(PR_CAP_AMBIENT_IS_SET)", capability_name(cap));
    return r == 1;
}

Result<void> set_ambient(int cap, bool raise) {
    if (::prctl(PR_CAP_AMBIENT, raise ? PR_CAP_AMBIENT_RAISE : PR_CAP_AMBIENT_LOWER, cap, 0, 0) < 0)
        return fail_errno(raise ? "prctl(PR_CAP_AMBIENT_RAISE)" : "prctl(PR_CAP_AMBIENT_LOWER)",
                          capability_name(cap));
    return {};
}

Result<void> clear_ambient() {
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
    return {};
}

Result<unsigned> securebits() {
    int r = ::prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
    if (r < 0) return fail_errno("prctl(PR_GET_SECUREBITS)");
    return static_cast<unsigned>(r);
}

Result<void> set_securebits(unsigned bits) {
    if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
        return fail_errno("prctl(PR_SET_SECUREBITS)", std::to_string(bits));
    return {};
}

unsigned locked_no_root_securebits() {
    return SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
           SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
           SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
}

Result<void> drop_bounding_all_but(CapabilitySet keep) {
    // Up to the first number the kernel does not know (EINVAL): no /proc read, which a
    // sandbox's set-up may not have at hand.
    for (int c = 0; c < 64; ++c) {
        if (keep.has(c)) continue;
        if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0) continue;
        if (errno == EINVAL && c > 0) return {};  // past the last capability
        return fail_errno("prctl(PR_CAPBSET_DROP)", capability_name(c));
    }
    return {};
}

Result<void> drop_all_but(CapabilitySet keep) {
    BUTTER_TRY(drop_bounding_all_but(keep));
    BUTTER_ASSIGN_OR_RETURN(Capabilities caps, Capabilities::empty());
    for (CapFlag f : {CapFlag::Effective, CapFlag::Permitted, CapFlag::Inheritable})
        BUTTER_TRY(caps.set(f, keep, true));
    BUTTER_TRY(caps.apply());
    BUTTER_TRY(clear_ambient());
    for (int c : keep.list())
        BUTTER_TRY(set_ambient(c, true));
    return {};
}

Result<void> drop_all_locked() {
    BUTTER_TRY(drop_bounding_all_but({}));
    BUTTER_TRY(set_securebits(locked_no_root_securebits()));
    BUTTER_ASSIGN_OR_RETURN(Capabilities none, Capabilities::empty());
    return none.apply();
}

}  // namespace butter
