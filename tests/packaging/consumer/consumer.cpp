// A program built against an installed libbutter (through find_package and pkg-config).
#include <butter/eventfd.hpp>
#include <butter/inotify.hpp>
#include <butter/process.hpp>

#include <cstdio>

int main() {
    auto e = butter::EventFd::create(0, butter::EventFdFlag::NonBlock);
    if (!e || !e->write(41) || !e->write(1)) return 1;
    auto v = e->read_event();
    if (!v || !v->has_value() || **v != 42) return 2;
    auto in = butter::Inotify::create();
    if (!in || butter::getpid() <= 0) return 3;
    std::puts("consumer ok");
    return 0;
}
