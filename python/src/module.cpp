// butter._butter: libbutter for Python (the seed's package, issue 32). The Python modules in
// python/butter/ re-export these under the seed's names and add the asyncio twins.
//
// Every kernel object is opened non-blocking; a blocking read_event() waits in poll(2) with the
// GIL released and runs Python's signal handlers on EINTR (PEP 475), so Ctrl-C interrupts it.
// A kernel Error becomes an OSError (the errno's subclass: FileNotFoundError, ...) whose
// strerror names the call, whose filename is the Error's context and which carries `.call`.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/mount.h>

#include <butter/hostname.hpp>
#include <butter/inotify.hpp>
#include <butter/mount.hpp>
#include <butter/process.hpp>
#include <butter/signalfd.hpp>
#include <butter/splice.hpp>
#include <butter/timerfd.hpp>

#include "common.hpp"

namespace butter::python {

BUTTER_PY_BOUND(InotifyEvent);
BUTTER_PY_BOUND(SignalInfo);
BUTTER_PY_BOUND(Clock);

namespace {

void bind_inotify(py::module_& m) {
    using H = Handle<Inotify>;
    py::class_<InotifyEvent>(m, "InotifyEvent")
        .def_readonly("wd", &InotifyEvent::wd)
        .def_property_readonly("mask", [](const InotifyEvent& e) { return e.mask.raw(); })
        .def_readonly("cookie", &InotifyEvent::cookie)
        // Names and paths as os.fsdecode gives them (any bytes a file name may hold).
        .def_property_readonly("name", [](const InotifyEvent& e) { return fs_str(e.name); })
        .def_property_readonly("watch_path",
                               [](const InotifyEvent& e) { return fs_str(e.watch_path); })
        .def_property_readonly("moved_from",
                               [](const InotifyEvent& e) -> py::object {
                                   if (!e.moved_from) return py::none();
                                   return fs_str(*e.moved_from);
                               })
        .def_property_readonly("path", [](const InotifyEvent& e) { return fs_str(e.path()); })
        .def_property_readonly("is_dir", &InotifyEvent::is_dir)
        .def_property_readonly("is_overflow", &InotifyEvent::is_overflow)
        .def_property_readonly("is_ignored", &InotifyEvent::is_ignored)
        .def_property_readonly("flags", [](const InotifyEvent& e) { return flag_list(e.mask); })
        .def("__repr__",
             [](const InotifyEvent& e) { return fs_str("<InotifyEvent " + e.to_string() + ">"); });
    py::class_<H, std::shared_ptr<H>> cls(m, "Inotify");
    cls.def(py::init([](bool blocking) {
                auto h = std::make_shared<H>("Inotify");
                h->obj.emplace(value(Inotify::create(InotifyFlag::NonBlock)));
                h->blocking = blocking;
                return h;
            }),
            py::arg("blocking") = true)
        .def(
            "watch",
            [](H& h, py::object path, std::uint32_t mask) {
                return value(h.get().add_watch(fs_bytes(path), InotifyMasks::from_raw(mask)));
            },
            py::arg("path"), py::arg("mask") = IN_ALL_EVENTS,
            "inotify_add_watch(2): the watch descriptor.")
        .def(
            "modify_watch",
            [](H& h, int wd, std::uint32_t mask) {
                return value(h.get().modify_watch(wd, InotifyMasks::from_raw(mask)));
            },
            py::arg("wd"), py::arg("mask"))
        .def(
            "ignore", [](H& h, int wd) { check(h.get().remove_watch(wd)); }, py::arg("wd"),
            "inotify_rm_watch(2): an IN_IGNORED event follows.")
        .def(
            "path_of",
            [](H& h, int wd) -> py::object {
                const std::string* p = h.get().path_of(wd);
                if (!p) return py::none();
                return fs_str(*p);
            },
            py::arg("wd"))
        .def_property_readonly("watch_count", [](H& h) { return h.get().watch_count(); })
        .def_property_readonly(
            "buffered", [](H& h) { return h.get().buffered(); },
            "Events read from the kernel and not yet returned: select() does not see them.");
    event_like<Inotify, InotifyEvent>(cls);
#define BUTTER_IN(name) m.attr(#name) = static_cast<std::uint32_t>(name)
    BUTTER_IN(IN_ACCESS);
    BUTTER_IN(IN_MODIFY);
    BUTTER_IN(IN_ATTRIB);
    BUTTER_IN(IN_CLOSE_WRITE);
    BUTTER_IN(IN_CLOSE_NOWRITE);
    BUTTER_IN(IN_CLOSE);
    BUTTER_IN(IN_OPEN);
    BUTTER_IN(IN_MOVED_FROM);
    BUTTER_IN(IN_MOVED_TO);
    BUTTER_IN(IN_MOVE);
    BUTTER_IN(IN_CREATE);
    BUTTER_IN(IN_DELETE);
    BUTTER_IN(IN_DELETE_SELF);
    BUTTER_IN(IN_MOVE_SELF);
    BUTTER_IN(IN_ALL_EVENTS);
    BUTTER_IN(IN_UNMOUNT);
    BUTTER_IN(IN_Q_OVERFLOW);
    BUTTER_IN(IN_IGNORED);
    BUTTER_IN(IN_ISDIR);
    BUTTER_IN(IN_ONLYDIR);
    BUTTER_IN(IN_DONT_FOLLOW);
    BUTTER_IN(IN_EXCL_UNLINK);
    BUTTER_IN(IN_MASK_CREATE);
    BUTTER_IN(IN_MASK_ADD);
    BUTTER_IN(IN_ONESHOT);
#undef BUTTER_IN
}

void bind_timerfd(py::module_& m) {
    using H = Handle<TimerFd>;
    py::enum_<Clock>(m, "Clock")
        .value("MONOTONIC", Clock::Monotonic)
        .value("BOOTTIME", Clock::Boottime)
        .value("REALTIME", Clock::Realtime);
    py::class_<H, std::shared_ptr<H>> cls(m, "TimerFD");
    cls.def(py::init([](Clock clock, bool blocking) {
                auto h = std::make_shared<H>("TimerFD");
                h->obj.emplace(value(TimerFd::create(clock, TimerFdFlag::NonBlock)));
                h->blocking = blocking;
                return h;
            }),
            py::arg("clock") = Clock::Monotonic, py::arg("blocking") = true)
        .def(
            "set",
            [](H& h, double initial, double interval, bool absolute) {
                if (absolute)
                    check(h.get().set_absolute(seconds(initial), seconds(interval)));
                else if (initial <= 0)
                    throw py::value_error("the first expiry must be after more than 0 s");
                else
                    check(h.get().set_relative(seconds(initial), seconds(interval)));
            },
            py::arg("initial"), py::arg("interval") = 0.0, py::arg("absolute") = false,
            "Arms the timer: first after `initial` seconds (or at that clock reading when "
            "absolute), then every `interval` seconds (0: once).")
        .def("disarm", [](H& h) { check(h.get().disarm()); })
        .def(
            "get",
            [](H& h) {
                TimerSetting s = value(h.get().get());
                return py::make_tuple(as_seconds(s.remaining), as_seconds(s.interval));
            },
            "(seconds to the next expiry, interval); (0, 0) when disarmed.");
    event_like<TimerFd, std::uint64_t>(cls);
    m.def(
        "clock_now", [](Clock c) { return as_seconds(value(clock_now(c))); },
        py::arg("clock") = Clock::Monotonic);
}

SignalSet signal_set(const std::vector<int>& signals) {
    SignalSet set;
    for (int s : signals) {
        if (s < 1 || s > SIGRTMAX) throw py::value_error("no signal " + std::to_string(s));
        set.add(s);
    }
    return set;
}

void bind_signalfd(py::module_& m) {
    using H = Handle<SignalFd>;
    py::class_<SignalInfo>(m, "SignalInfo")
        .def_readonly("signo", &SignalInfo::signo)
        .def_readonly("code", &SignalInfo::code)
        .def_readonly("pid", &SignalInfo::pid)
        .def_readonly("uid", &SignalInfo::uid)
        .def_readonly("status", &SignalInfo::status)
        .def_readonly("errno", &SignalInfo::error)
        .def_readonly("value", &SignalInfo::value)
        .def_readonly("addr", &SignalInfo::addr)
        .def_readonly("fd", &SignalInfo::fd)
        .def("__repr__", [](const SignalInfo& i) { return "<SignalInfo " + i.to_string() + ">"; });
    py::class_<H, std::shared_ptr<H>> cls(m, "SignalFD");
    cls.def(
           py::init([](const std::vector<int>& signals, bool blocking) {
               auto h = std::make_shared<H>("SignalFD");
               h->obj.emplace(value(SignalFd::create(signal_set(signals), SignalFdFlag::NonBlock)));
               h->blocking = blocking;
               return h;
           }),
           py::arg("signals"), py::arg("blocking") = true,
           "signalfd(2) for `signals`; they arrive here only while blocked "
           "(signal.pthread_sigmask).")
        .def(
            "set_mask",
            [](H& h, const std::vector<int>& signals) {
                check(h.get().set_mask(signal_set(signals)));
            },
            py::arg("signals"))
        .def_property_readonly(
            "buffered", [](H& h) { return h.get().buffered(); },
            "Signals read from the kernel and not yet returned: select() does not see them.");
    event_like<SignalFd, SignalInfo>(cls);
    m.def(
        "signal_name", [](int sig) { return signal_name(sig); }, py::arg("signo"));
    m.def(
        "parse_signal", [](const std::string& s) { return value(parse_signal(s)); },
        py::arg("text"));
}

// A blocking splice, tee or vmsplice, interruptible: the call is made with SPLICE_F_NONBLOCK
// (which covers the pipe side) and, while it would block, `in` is waited for readable and `out`
// for writable in poll, where Python's signal handlers run. With the caller's own
// SPLICE_F_NONBLOCK, EAGAIN is theirs (BlockingIOError).
template <class Call>
std::size_t moving(int in, int out, unsigned flags, Call&& call) {
    const bool wait = !(flags & SPLICE_F_NONBLOCK);
    for (;;) {
        std::optional<Result<std::size_t>> r;
        {
            py::gil_scoped_release unlocked;  // (a large move copies for a while)
            r.emplace(call(SpliceFlags::from_raw(flags | SPLICE_F_NONBLOCK)));
        }
        if (*r) return **r;
        if (!wait || r->error().errno_value() != EAGAIN) raise(r->error());
        if (in >= 0 && wait_for(in, POLLIN, std::nullopt) != Wait::Ready) return 0;
        if (out >= 0) (void)wait_for(out, POLLOUT, std::nullopt);
    }
}

void bind_splice(py::module_& m) {
    m.attr("SPLICE_F_MOVE") = static_cast<unsigned>(SPLICE_F_MOVE);
    m.attr("SPLICE_F_NONBLOCK") = static_cast<unsigned>(SPLICE_F_NONBLOCK);
    m.attr("SPLICE_F_MORE") = static_cast<unsigned>(SPLICE_F_MORE);
    m.attr("SPLICE_F_GIFT") = static_cast<unsigned>(SPLICE_F_GIFT);
    m.def(
        "splice",
        [](int fd_in, int fd_out, std::size_t len, std::optional<std::int64_t> off_in,
           std::optional<std::int64_t> off_out, unsigned flags) {
            std::int64_t in = off_in.value_or(0), out = off_out.value_or(0);
            return moving(fd_in, fd_out, flags, [&](SpliceFlags f) {
                return butter::splice(fd_in, off_in ? &in : nullptr, fd_out,
                                      off_out ? &out : nullptr, len, f);
            });
        },
        py::arg("fd_in"), py::arg("fd_out"), py::arg("length"), py::arg("off_in") = py::none(),
        py::arg("off_out") = py::none(), py::arg("flags") = 0,
        "splice(2): moves up to `length` bytes between a pipe and an fd; the bytes moved (0: "
        "the writers are gone). Blocks until it can move some, unless SPLICE_F_NONBLOCK.");
    m.def(
        "tee",
        [](int fd_in, int fd_out, std::size_t len, unsigned flags) {
            return moving(fd_in, fd_out, flags,
                          [&](SpliceFlags f) { return butter::tee(fd_in, fd_out, len, f); });
        },
        py::arg("fd_in"), py::arg("fd_out"), py::arg("length"), py::arg("flags") = 0,
        "tee(2): copies up to `length` bytes from one pipe to another, consuming none.");
    m.def(
        "vmsplice",
        [](int fd, const std::vector<py::buffer>& buffers, unsigned flags) {
            // Into a pipe only: on the read end vmsplice(2) copies out of the pipe into the
            // buffers, which here may be immutable (bytes) or shared.
            int mode = ::fcntl(fd, F_GETFL);
            if (mode < 0) raise(Error::from_errno("fcntl(F_GETFL)"));
            if ((mode & O_ACCMODE) != O_WRONLY)
                throw py::value_error("vmsplice: the write end of a pipe is needed");
            // The kernel takes references to the pages: reusing the memory before the reader
            // has consumed it changes what it reads (SPLICE_F_GIFT aside).
            std::vector<Buffer> held;
            held.reserve(buffers.size());
            std::vector<struct iovec> iov;
            for (const py::buffer& b : buffers) {
                held.emplace_back(b);
                iov.push_back(held.back().iov());
            }
            return moving(-1, fd, flags,
                          [&](SpliceFlags f) { return butter::vmsplice(fd, iov, f); });
        },
        py::arg("fd"), py::arg("buffers"), py::arg("flags") = 0,
        "vmsplice(2): the buffers (contiguous) into a pipe's write end; the bytes taken.");
    m.def(
        "pipe_size", [](int fd) { return value(butter::pipe_size(fd)); }, py::arg("fd"));
    m.def(
        "set_pipe_size", [](int fd, std::size_t size) { return value(set_pipe_size(fd, size)); },
        py::arg("fd"), py::arg("size"));
}

void bind_system(py::module_& m) {
    m.def("gethostname", [] { return fs_str(value(butter::gethostname())); });
    m.def(
        "sethostname", [](py::object n) { check(butter::sethostname(fs_bytes(n))); },
        py::arg("name"));
    m.def("getdomainname", [] { return fs_str(value(butter::getdomainname())); });
    m.def(
        "setdomainname", [](py::object n) { check(butter::setdomainname(fs_bytes(n))); },
        py::arg("name"));
    m.def(
        "getpid", [] { return butter::getpid(); }, "getpid(2) as a raw system call.");
    m.def(
        "getppid", [] { return butter::getppid(); }, "getppid(2) as a raw system call.");
    m.def(
        "mount",
        [](py::object source, py::object target, py::object fstype, unsigned long flags,
           py::object data) {
            std::string src = fs_bytes(source), tgt = fs_bytes(target);
            std::string type = fstype.is_none() ? "" : fs_bytes(fstype);
            std::optional<std::string> d;
            if (!data.is_none()) d = fs_bytes(data);
            check(butter::mount(src.c_str(), tgt.c_str(), type.empty() ? nullptr : type.c_str(),
                                MountFlags::from_raw(flags), d ? d->c_str() : nullptr));
        },
        py::arg("source"), py::arg("target"), py::arg("fstype") = py::none(), py::arg("flags") = 0,
        py::arg("data") = py::none(), "mount(2).");
    m.def(
        "umount",
        [](py::object target, int flags) {
            check(umount2(fs_bytes(target).c_str(), Flags<UmountFlag>::from_raw(flags)));
        },
        py::arg("target"), py::arg("flags") = 0, "umount2(2).");
    m.def(
        "pivot_root",
        [](py::object new_root, py::object put_old) {
            check(butter::pivot_root(fs_bytes(new_root).c_str(), fs_bytes(put_old).c_str()));
        },
        py::arg("new_root"), py::arg("put_old"), "pivot_root(2).");
#define BUTTER_MS(name) m.attr(#name) = static_cast<unsigned long>(name)
    BUTTER_MS(MS_RDONLY);
    BUTTER_MS(MS_NOSUID);
    BUTTER_MS(MS_NODEV);
    BUTTER_MS(MS_NOEXEC);
    BUTTER_MS(MS_REMOUNT);
    BUTTER_MS(MS_BIND);
    BUTTER_MS(MS_REC);
    BUTTER_MS(MS_PRIVATE);
    BUTTER_MS(MS_SLAVE);
    BUTTER_MS(MS_SHARED);
    BUTTER_MS(MS_MOVE);
    BUTTER_MS(MS_NOATIME);
#undef BUTTER_MS
    m.attr("MNT_FORCE") = static_cast<int>(MNT_FORCE);
    m.attr("MNT_DETACH") = static_cast<int>(MNT_DETACH);
    m.attr("MNT_EXPIRE") = static_cast<int>(MNT_EXPIRE);
    m.attr("UMOUNT_NOFOLLOW") = static_cast<int>(UMOUNT_NOFOLLOW);
}

}  // namespace
}  // namespace butter::python

PYBIND11_MODULE(_butter, m) {
    m.doc() = "libbutter's kernel objects (use the butter.* modules)";
    // An argument of the wrong type deep in a conversion (a tuple where a pair belongs, None
    // where an int does) is a TypeError, as Python's own functions say it, not a RuntimeError.
    pybind11::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const pybind11::cast_error& e) {
            PyErr_SetString(PyExc_TypeError, e.what());
        }
    });
    butter::python::bind_inotify(m);
    butter::python::bind_eventfd_type(m);
    butter::python::bind_timerfd(m);
    butter::python::bind_signalfd(m);
    butter::python::bind_splice(m);
    butter::python::bind_system(m);
    butter::python::bind_fanotify(m);
    butter::python::bind_seccomp(m);
    butter::python::bind_aio(m);
    butter::python::bind_sandbox(m);
}
