// What every part of butter._butter shares: errors as OSError, the blocking wait, the handle
// behind an event-like object and the methods every such object has.
#pragma once

#include <poll.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

#include <butter/error.hpp>
#include <butter/fd.hpp>
#include <butter/flags.hpp>

namespace butter::python {

namespace py = pybind11;

// Whether an Error's context is the path it was about (OSError.filename), not a number or flags.
inline bool context_is_path(const Error& e) {
    const std::string& c = e.context();
    return !c.empty() && (c.find('/') != std::string::npos || c[0] == '.');
}

[[noreturn]] inline void raise(const Error& e) {
    if (e.errno_value() == 0) throw py::value_error(e.what());
    std::string text = std::string(e.call()) + ": " + std::strerror(e.errno_value());
    py::object os_error = py::reinterpret_borrow<py::object>(PyExc_OSError);
    py::object exc;
    if (context_is_path(e)) {
        exc = os_error(e.errno_value(), text,
                       py::reinterpret_steal<py::object>(PyUnicode_DecodeFSDefaultAndSize(
                           e.context().data(), static_cast<Py_ssize_t>(e.context().size()))));
    } else {
        if (!e.context().empty()) text += " (" + e.context() + ")";
        exc = os_error(e.errno_value(), text);
    }
    exc.attr("call") = py::str(e.call());
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
}

template <class T>
T value(Result<T>&& r) {
    if (!r) raise(r.error());
    return std::move(*r);
}
inline void check(Result<void>&& r) {
    if (!r) raise(r.error());
}

// A mask's flag names as the core names them ("Create", "IsDir").
template <class Enum>
std::vector<std::string> flag_list(Flags<Enum> mask) {
    std::vector<std::string> out;
    for (const auto& f : flag_names(Enum{}))
        if (mask.has(f.value)) out.emplace_back(f.name);
    return out;
}

// A path (or host name, or argument) from Python as os.fsencode takes it: str (with
// surrogateescape), bytes or os.PathLike; ValueError for an embedded NUL, which the C string
// the kernel gets would cut short.
inline std::string fs_bytes(py::handle o) {
    PyObject* out = nullptr;
    if (!PyUnicode_FSConverter(o.ptr(), &out)) throw py::error_already_set();
    py::object b = py::reinterpret_steal<py::object>(out);
    return std::string(PyBytes_AS_STRING(out), static_cast<std::size_t>(PyBytes_GET_SIZE(out)));
}
// A name for libraries that take text (a syscall name, a profile key): no NUL in it.
inline std::string no_nul(const std::string& s, const char* what) {
    if (s.find('\0') != std::string::npos)
        throw py::value_error(std::string(what) + ": embedded null byte");
    return s;
}
// Kernel bytes back to str as os.fsdecode does (undecodable bytes as surrogate escapes).
inline py::str fs_str(const std::string& s) {
    return py::reinterpret_steal<py::str>(
        PyUnicode_DecodeFSDefaultAndSize(s.data(), static_cast<Py_ssize_t>(s.size())));
}

// A timeout in seconds as a deadline (nullopt: none).
using Deadline = std::optional<std::chrono::steady_clock::time_point>;
inline Deadline deadline_in(std::optional<double> timeout) {
    if (!timeout) return std::nullopt;
    if (!std::isfinite(*timeout) || *timeout < 0 || *timeout > 1e9)
        throw py::value_error("timeout: a number of seconds, 0 or more");
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(*timeout));
}

// Waits until `fd` has `events` (POLLIN, POLLOUT), or `wake` is readable, or the deadline
// passes, the GIL released. Python's signal handlers run on EINTR (their exception
// propagates) and the wait goes on to the same deadline.
enum class Wait { Ready, Timeout, Hangup, Woken };
inline Wait wait_for(int fd, short events, const Deadline& deadline, int wake = -1) {
    for (;;) {
        int ms = -1;
        if (deadline) {
            auto left = *deadline - std::chrono::steady_clock::now();
            ms = left <= left.zero()
                     ? 0
                     : static_cast<int>(std::min<long long>(
                           std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
        }
        struct pollfd p[2] = {{fd, events, 0}, {wake, POLLIN, 0}};
        int n;
        {
            py::gil_scoped_release unlocked;
            n = ::poll(p, wake >= 0 ? 2 : 1, ms);
        }
        if (n > 0) {
            if (wake >= 0 && p[1].revents) return Wait::Woken;
            return (p[0].revents & (POLLHUP | POLLERR)) && !(p[0].revents & events) ? Wait::Hangup
                                                                                    : Wait::Ready;
        }
        if (n == 0) return Wait::Timeout;
        if (errno != EINTR) raise(Error::from_errno("poll"));
        if (PyErr_CheckSignals() < 0) throw py::error_already_set();
    }
}

// The object behind a Python event-like object: the C++ wrapper, or nothing once closed; one
// reader at a time (a read may run with the GIL released). close() from another thread wakes
// a reader waiting in poll (through `wake`, made at the first wait), which then raises.
template <class T>
struct Handle {
    explicit Handle(std::string kind) : name(std::move(kind)) {}
    std::string name;  // "Inotify", for messages
    std::optional<T> obj;
    std::mutex reading;
    bool blocking = true;
    Fd wake;

    T& get() {
        if (!obj) throw py::value_error("I/O operation on a closed " + name);
        return *obj;
    }
    int fileno() { return get().fd(); }
    void close() {
        if (wake.valid()) {
            std::uint64_t one = 1;
            (void)!::write(wake.get(), &one, sizeof one);
        }
        std::lock_guard<std::mutex> lock(reading);
        obj.reset();
    }
    bool closed() const { return !obj; }

    // (The GIL is held: get() and wake are safe to use; the wait itself runs without it.)
    Wait wait(const Deadline& deadline) {
        int fd = get().fd();
        if (!wake.valid()) {
            int w = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (w < 0) raise(Error::from_errno("eventfd"));
            wake = Fd(w);
        }
        return wait_for(fd, POLLIN, deadline, wake.get());
    }

    // One event: waits for it when blocking (None after `timeout` seconds), else None at once.
    // (Hangup: a seccomp listener whose filter has no process left; nothing will come.)
    template <class Event>
    std::optional<Event> read_event(std::optional<double> timeout) {
        return read_waiting<std::optional<Event>>(timeout, [](T& o) { return o.read_event(); });
    }
    // What is buffered, or all the kernel has; when blocking and there is nothing, waits for
    // the first (an empty list after `timeout`).
    template <class Event>
    std::vector<Event> read_events(std::optional<double> timeout) {
        return read_waiting<std::vector<Event>>(timeout, [](T& o) { return o.read_events(); });
    }

  private:
    static bool any(const auto& got) {
        if constexpr (requires { got.has_value(); })
            return got.has_value();
        else
            return !got.empty();
    }
    // `read` until it gives something, waiting between tries as read_event says.
    template <class Got, class Read>
    Got read_waiting(std::optional<double> timeout, Read read) {
        Deadline deadline = deadline_in(timeout);
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(reading);
                Got got = value(read(get()));
                if (any(got) || (!blocking && !timeout)) return got;
            }
            Wait w = wait(deadline);
            if (w == Wait::Timeout || w == Wait::Hangup) return Got{};
        }
    }
};

// The methods every event-like object has: fileno, close, closed, the context manager,
// read_event and read_events.
template <class T, class Event, class Cls>
void event_like(Cls& cls) {
    using H = Handle<T>;
    cls.def("fileno", &H::fileno, "The file descriptor (for select, selectors and asyncio).")
        .def("close", &H::close, "Closes the file descriptor (again: nothing).")
        .def_property_readonly("closed", &H::closed)
        .def_readonly("blocking", &H::blocking)
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](H& h, py::args) { h.close(); })
        .def("read_event", &H::template read_event<Event>, py::arg("timeout") = py::none(),
             "One event; None when non-blocking and none is ready, or after `timeout` seconds.")
        .def("read_events", &H::template read_events<Event>, py::arg("timeout") = py::none(),
             "The buffered events, or all the kernel has (waits for one when blocking).");
}

// Seconds as nanoseconds that fit in 64 bits (below 292 years).
inline std::chrono::nanoseconds seconds(double s) {
    if (!std::isfinite(s) || s < 0 || s > 9.2e9) throw py::value_error("bad number of seconds");
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(s * 1e9)));
}
inline double as_seconds(std::chrono::nanoseconds ns) {
    return static_cast<double>(ns.count()) / 1e9;
}

// A buffer of Python's (bytes, bytearray, memoryview, ...), held while used; `writable` for
// one the kernel will write (BufferError for bytes).
struct Buffer {
    py::buffer_info info;
    explicit Buffer(const py::buffer& b, bool writable = false) : info(b.request(writable)) {
        if (!PyBuffer_IsContiguous(info.view(), 'C'))  // a strided view: not one run of bytes
            throw py::value_error("a contiguous buffer is needed");
    }
    struct iovec iov() const {
        return {info.ptr, static_cast<std::size_t>(info.size * info.itemsize)};
    }
};

// Whether T is a class bound here. An object made by `Cls.__new__(Cls)` has no C++ object
// until __init__ makes it, and pybind11 would hand its methods uninitialised memory (a crash):
// for a bound class, a method on such an object raises TypeError instead (the type_caster
// below). Each bound class is named with BUTTER_PY_BOUND before its first use.
template <class T>
struct bound_class : std::false_type {};
template <class T>
struct bound_class<Handle<T>> : std::true_type {};
#define BUTTER_PY_BOUND(T) \
    template <>            \
    struct bound_class<T> : std::true_type {}

void bind_eventfd_type(py::module_& m);
void bind_fanotify(py::module_& m);
void bind_seccomp(py::module_& m);
void bind_aio(py::module_& m);
void bind_sandbox(py::module_& m);

}  // namespace butter::python

namespace pybind11::detail {

template <class T>
class type_caster<T, enable_if_t<butter::python::bound_class<T>::value>>
    : public type_caster_base<T> {
  public:
    bool load(handle src, bool convert) {
        if (src && isinstance<T>(src)) {
            auto* inst = reinterpret_cast<instance*>(src.ptr());
            value_and_holder vh = inst->get_value_and_holder(get_type_info(typeid(T)), false);
            if (vh.inst && !vh.holder_constructed())
                throw type_error(std::string(Py_TYPE(src.ptr())->tp_name) +
                                 ": __init__ was not called (made by __new__ alone)");
        }
        return type_caster_base<T>::load(src, convert);
    }
};

}  // namespace pybind11::detail
