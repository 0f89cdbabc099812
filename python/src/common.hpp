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

#include <butter/error.hpp>

namespace butter::python {

namespace py = pybind11;

[[noreturn]] inline void raise(const Error& e) {
    if (e.errno_value() == 0) throw py::value_error(e.what());
    std::string text = std::string(e.call()) + ": " + std::strerror(e.errno_value());
    py::object exc =
        e.context().empty()
            ? py::reinterpret_borrow<py::object>(PyExc_OSError)(e.errno_value(), text)
            : py::reinterpret_borrow<py::object>(PyExc_OSError)(e.errno_value(), text, e.context());
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

// Waits until `fd` is readable (timeout < 0: for ever), the GIL released; Python's signal
// handlers run on EINTR and their exception propagates.
enum class Wait { Ready, Timeout, Hangup };
inline Wait wait_readable(int fd, double timeout) {
    for (;;) {
        int ms = timeout < 0 ? -1 : static_cast<int>(std::ceil(timeout * 1000));
        int n;
        struct pollfd p {
            fd, POLLIN, 0
        };
        {
            py::gil_scoped_release unlocked;
            n = ::poll(&p, 1, ms);
        }
        if (n > 0)
            return (p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN) ? Wait::Hangup
                                                                              : Wait::Ready;
        if (n == 0) return Wait::Timeout;
        if (errno != EINTR) raise(Error::from_errno("poll"));
        if (PyErr_CheckSignals() < 0) throw py::error_already_set();
    }
}

// The object behind a Python event-like object: the C++ wrapper, or nothing once closed; one
// reader at a time (a read may run with the GIL released).
template <class T>
struct Handle {
    explicit Handle(std::string kind) : name(std::move(kind)) {}
    std::string name;  // "Inotify", for messages
    std::optional<T> obj;
    std::mutex reading;
    bool blocking = true;

    T& get() {
        if (!obj) throw py::value_error("I/O operation on a closed " + name);
        return *obj;
    }
    int fileno() { return get().fd(); }
    void close() {
        std::lock_guard<std::mutex> lock(reading);
        obj.reset();
    }
    bool closed() const { return !obj; }

    // One event: waits for it when blocking (None after `timeout` seconds), else None at once.
    template <class Event>
    std::optional<Event> read_event(std::optional<double> timeout) {
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(reading);
                auto got = value(get().read_event());
                if (got || (!blocking && !timeout)) return got;
            }
            // (Hangup: a seccomp listener whose filter has no process left; nothing will come.)
            if (wait_readable(get().fd(), timeout.value_or(-1.0)) != Wait::Ready)
                return std::nullopt;
        }
    }
    // What is buffered, or all the kernel has; when blocking and there is nothing, waits for
    // the first (an empty list after `timeout`).
    template <class Event>
    std::vector<Event> read_events(std::optional<double> timeout) {
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(reading);
                auto got = value(get().read_events());
                if (!got.empty() || (!blocking && !timeout)) return got;
            }
            if (wait_readable(get().fd(), timeout.value_or(-1.0)) != Wait::Ready) return {};
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

inline std::chrono::nanoseconds seconds(double s) {
    if (!std::isfinite(s) || s < 0 || s > 1e10) throw py::value_error("bad number of seconds");
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(s * 1e9)));
}
inline double as_seconds(std::chrono::nanoseconds ns) {
    return static_cast<double>(ns.count()) / 1e9;
}

// A read-only buffer of Python's (bytes, bytearray, memoryview, ...), held while used.
struct Buffer {
    py::buffer_info info;
    explicit Buffer(const py::buffer& b) : info(b.request()) {
        if (info.ndim > 1 && !PyBuffer_IsContiguous(info.view(), 'C'))
            throw py::value_error("a contiguous buffer is needed");
    }
    struct iovec iov() const {
        return {info.ptr, static_cast<std::size_t>(info.size * info.itemsize)};
    }
};

void bind_eventfd_type(py::module_& m);
void bind_fanotify(py::module_& m);
void bind_seccomp(py::module_& m);
void bind_aio(py::module_& m);
void bind_sandbox(py::module_& m);

}  // namespace butter::python
