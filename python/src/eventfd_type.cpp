// butter.eventfd.EventFD, written against CPython's own C API rather than pybind11: an eventfd
// round trip is two system calls, and pybind11's dispatch (an argument vector and loaders per
// call) cost a third on top of them (bench/python_bench.py: 0.81x os.eventfd's rate). Here a
// call is a vectorcall straight into EventFd::write / read_event; the fd is non-blocking, so
// neither call releases the GIL (they cannot block); a blocking read waits in poll without it.
#include <butter/eventfd.hpp>

#include "common.hpp"

namespace butter::python {

namespace {

struct EventFdObject {
    PyObject_HEAD Handle<EventFd> h;  // (closed, blocking and the reader's wait as elsewhere)
};

// Runs `body`, turning the exceptions common.hpp's helpers throw into a set Python error.
template <class F>
PyObject* guarded(F&& body) {
    try {
        return body();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (py::builtin_exception& e) {
        e.set_error();
    } catch (std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

// The optional `timeout` (positional or keyword): -1 for none, else seconds; false on an error.
bool timeout_arg(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, double& timeout,
                 bool& given) {
    PyObject* value = nullptr;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "takes at most one argument (timeout)");
        return false;
    }
    if (nargs == 1) value = args[0];
    if (kwnames) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
            if (value ||
                PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "timeout") != 0) {
                PyErr_SetString(PyExc_TypeError, "the one argument is timeout");
                return false;
            }
            value = args[nargs + i];
        }
    }
    given = value && value != Py_None;
    timeout = -1;
    if (!given) return true;
    timeout = PyFloat_AsDouble(value);
    if (timeout == -1 && PyErr_Occurred()) return false;
    if (!std::isfinite(timeout) || timeout < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout: a number of seconds, 0 or more");
        return false;
    }
    return true;
}

// One value, waiting as the object says; nullopt: none (non-blocking, or the timeout).
std::optional<std::uint64_t> read_one(EventFdObject* self, double timeout, bool given) {
    return self->h.read_event<std::uint64_t>(given ? std::optional<double>(timeout) : std::nullopt);
}

PyObject* efd_write(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
    auto* self = reinterpret_cast<EventFdObject*>(o);
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "write(n=1)");
        return nullptr;
    }
    unsigned long long n = 1;
    if (nargs == 1) {
        n = PyLong_AsUnsignedLongLong(args[0]);
        if (n == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return nullptr;
        if (n == ~0ULL) {
            PyErr_SetString(PyExc_ValueError, "eventfd: 2**64-1 is not a value");
            return nullptr;
        }
    }
    return guarded([&]() -> PyObject* {
        check(self->h.get().write(n));
        Py_RETURN_NONE;
    });
}

PyObject* efd_read_event(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    auto* self = reinterpret_cast<EventFdObject*>(o);
    double timeout;
    bool given;
    if (!timeout_arg(args, nargs, kwnames, timeout, given)) return nullptr;
    return guarded([&]() -> PyObject* {
        auto got = read_one(self, timeout, given);
        if (!got) Py_RETURN_NONE;
        return PyLong_FromUnsignedLongLong(*got);
    });
}

PyObject* efd_read_events(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    auto* self = reinterpret_cast<EventFdObject*>(o);
    double timeout;
    bool given;
    if (!timeout_arg(args, nargs, kwnames, timeout, given)) return nullptr;
    return guarded([&]() -> PyObject* {
        auto got = read_one(self, timeout, given);  // an eventfd holds one value, not a queue
        PyObject* list = PyList_New(0);
        if (!list) return nullptr;
        if (got) {
            PyObject* v = PyLong_FromUnsignedLongLong(*got);
            if (!v || PyList_Append(list, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(list);
                return nullptr;
            }
            Py_DECREF(v);
        }
        return list;
    });
}

PyObject* efd_fileno(PyObject* o, PyObject*) {
    return guarded(
        [&] { return PyLong_FromLong(reinterpret_cast<EventFdObject*>(o)->h.fileno()); });
}

PyObject* efd_close(PyObject* o, PyObject*) {
    reinterpret_cast<EventFdObject*>(o)->h.close();
    Py_RETURN_NONE;
}

PyObject* efd_enter(PyObject* o, PyObject*) {
    Py_INCREF(o);
    return o;
}

PyObject* efd_exit(PyObject* o, PyObject*) {
    return efd_close(o, nullptr);
}

PyObject* efd_closed(PyObject* o, void*) {
    return PyBool_FromLong(reinterpret_cast<EventFdObject*>(o)->h.closed());
}

PyObject* efd_blocking(PyObject* o, void*) {
    return PyBool_FromLong(reinterpret_cast<EventFdObject*>(o)->h.blocking);
}

PyObject* efd_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"initial", "semaphore", "blocking", nullptr};
    long long initial = 0;
    int semaphore = 0, blocking = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L$pp", const_cast<char**>(names), &initial,
                                     &semaphore, &blocking))
        return nullptr;
    if (initial < 0 || initial > 0xffffffffLL) {
        PyErr_SetString(PyExc_ValueError, "initial: 0 .. 2**32-1");
        return nullptr;
    }
    Flags<EventFdFlag> flags = EventFdFlag::NonBlock;
    if (semaphore) flags |= EventFdFlag::Semaphore;
    auto created = EventFd::create(static_cast<unsigned>(initial), flags);
    if (!created) return guarded([&]() -> PyObject* { raise(created.error()); });
    auto* self = reinterpret_cast<EventFdObject*>(type->tp_alloc(type, 0));
    if (!self) return nullptr;
    new (&self->h) Handle<EventFd>("EventFD");
    self->h.obj.emplace(std::move(*created));
    self->h.blocking = blocking != 0;
    return reinterpret_cast<PyObject*>(self);
}

void efd_dealloc(PyObject* o) {
    auto* self = reinterpret_cast<EventFdObject*>(o);
    self->h.~Handle<EventFd>();
    Py_TYPE(o)->tp_free(o);
}

PyMethodDef efd_methods[] = {
    {"write", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(efd_write)), METH_FASTCALL,
     "write(n=1): adds n to the counter (BlockingIOError when it would overflow)."},
    {"read_event", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(efd_read_event)),
     METH_FASTCALL | METH_KEYWORDS,
     "read_event(timeout=None): the counter (1 in semaphore mode), reset; None when "
     "non-blocking and zero, or after timeout seconds."},
    {"read_events", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(efd_read_events)),
     METH_FASTCALL | METH_KEYWORDS, "read_events(timeout=None): [] or [the counter]."},
    {"fileno", efd_fileno, METH_NOARGS, "The file descriptor."},
    {"close", efd_close, METH_NOARGS, "Closes it (again: nothing)."},
    {"__enter__", efd_enter, METH_NOARGS, nullptr},
    {"__exit__", efd_exit, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef efd_getset[] = {
    {"closed", efd_closed, nullptr, nullptr, nullptr},
    {"blocking", efd_blocking, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject EventFdType = [] {
    PyTypeObject t{};
    Py_SET_REFCNT(reinterpret_cast<PyObject*>(&t), 1);  // (PyVarObject_HEAD_INIT's part)
    t.tp_name = "butter._butter.EventFD";
    t.tp_basicsize = sizeof(EventFdObject);
    t.tp_dealloc = efd_dealloc;
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
    t.tp_doc = "EventFD(initial=0, *, semaphore=False, blocking=True): eventfd(2).";
    t.tp_methods = efd_methods;
    t.tp_getset = efd_getset;
    t.tp_new = efd_new;
    return t;
}();

}  // namespace

void bind_eventfd_type(py::module_& m) {
    if (PyType_Ready(&EventFdType) < 0) throw py::error_already_set();
    Py_INCREF(&EventFdType);
    m.attr("EventFD") =
        py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(&EventFdType));
}

}  // namespace butter::python
