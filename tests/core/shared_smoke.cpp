// Links against libbutter.so (not the static library) and uses it: a missing export or a
// broken SONAME fails this program.
#include <butter/eventfd.hpp>
#include <butter/process.hpp>

#include <cstdio>

int main() {
    auto e = butter::EventFd::create(0, butter::EventFdFlag::NonBlock);
    if (!e || !e->write(2)) return 1;
    auto v = e->read_event();
    if (!v || !v->has_value() || **v != 2) return 1;
    if (butter::getpid() <= 0) return 1;
    std::puts("libbutter.so ok");
    return 0;
}
