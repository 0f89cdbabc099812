// butter._butter, continued: fanotify, seccomp (with its user-notification listener) and Linux
// AIO, the objects whose events or requests hold more than plain values (an open fd, a held
// system call, the caller's buffers).
#include <fcntl.h>
#include <sys/fanotify.h>

#include <map>

#include <butter/aio.hpp>
#include <butter/fanotify.hpp>
#include <butter/seccomp.hpp>

#include "common.hpp"

namespace butter::python {

BUTTER_PY_BOUND(FileHandle);
BUTTER_PY_BOUND(FanotifyEvent);
BUTTER_PY_BOUND(SeccompAction);
BUTTER_PY_BOUND(SeccompFilter);
BUTTER_PY_BOUND(SeccompNotification);

namespace {

// ---- fanotify ----------------------------------------------------------------------------------

FanotifyMarkType mark_type(const std::string& type) {
    if (type == "inode") return FanotifyMarkType::Inode;
    if (type == "mount") return FanotifyMarkType::Mount;
    if (type == "filesystem") return FanotifyMarkType::Filesystem;
    throw py::value_error("fanotify: mark type '" + type + "': inode, mount or filesystem");
}

}  // namespace

void bind_fanotify(py::module_& m) {
    using H = Handle<Fanotify>;
    py::class_<FileHandle>(m, "FileHandle")
        .def_readonly("info_type", &FileHandle::info_type)
        .def_readonly("fsid", &FileHandle::fsid)
        .def_readonly("handle_type", &FileHandle::handle_type)
        .def_property_readonly("handle",
                               [](const FileHandle& h) {
                                   return py::bytes(reinterpret_cast<const char*>(h.handle.data()),
                                                    h.handle.size());
                               })
        .def_property_readonly("name", [](const FileHandle& h) { return fs_str(h.name); });
    py::class_<FanotifyEvent>(m, "FanotifyEvent")
        .def_property_readonly("mask", [](const FanotifyEvent& e) { return e.mask.raw(); })
        .def_readonly("pid", &FanotifyEvent::pid)
        .def_property_readonly(
            "fd", [](const FanotifyEvent& e) { return e.fd.get(); },
            "The event's open fd of the object (-1: none, or closed); the "
            "event closes it when it goes, unless take_fd() took it.")
        .def("take_fd", [](FanotifyEvent& e) { return e.fd.release(); })
        .def("close",
             [](FanotifyEvent& e) {
                 e.fd.reset();
                 e.pidfd.reset();
             })
        .def_readonly("handles", &FanotifyEvent::handles)
        .def_readonly("error", &FanotifyEvent::error)
        .def_readonly("error_count", &FanotifyEvent::error_count)
        .def_property_readonly("name", [](const FanotifyEvent& e) { return fs_str(e.name()); })
        .def_property_readonly("path", [](const FanotifyEvent& e) { return fs_str(e.path()); })
        .def_property_readonly("is_permission", &FanotifyEvent::is_permission)
        .def_property_readonly("is_overflow", &FanotifyEvent::is_overflow)
        .def_property_readonly("is_dir", &FanotifyEvent::is_dir)
        .def_property_readonly("flags", [](const FanotifyEvent& e) { return flag_list(e.mask); })
        .def("__repr__", [](const FanotifyEvent& e) {
            return fs_str("<FanotifyEvent " + e.to_string() + ">");
        });
    py::class_<H, std::shared_ptr<H>> cls(m, "Fanotify");
    cls.def(py::init([](unsigned flags, int event_f_flags, bool blocking) {
                auto h = std::make_shared<H>("Fanotify");
                auto init = Flags<FanotifyInit>::from_raw(flags) | FanotifyInit::NonBlock;
                h->obj.emplace(value(Fanotify::create(init, event_f_flags)));
                h->blocking = blocking;
                return h;
            }),
            py::arg("flags") = FAN_CLASS_NOTIF, py::arg("event_f_flags") = O_RDONLY | O_LARGEFILE,
            py::arg("blocking") = true,
            "fanotify_init(2) (FAN_* flags; EPERM without CAP_SYS_ADMIN unless FAN_REPORT_FID).")
        .def(
            "mark",
            [](H& h, py::object path, std::uint64_t mask, const std::string& type, unsigned flags) {
                check(h.get().add_mark(fs_bytes(path), FanotifyMasks::from_raw(mask),
                                       mark_type(type), Flags<FanotifyMarkFlag>::from_raw(flags)));
            },
            py::arg("path"), py::arg("mask"), py::arg("type") = "inode", py::arg("flags") = 0,
            "fanotify_mark(FAN_MARK_ADD): type 'inode', 'mount' or 'filesystem'.")
        .def(
            "unmark",
            [](H& h, py::object path, std::uint64_t mask, const std::string& type, unsigned flags) {
                check(h.get().remove_mark(fs_bytes(path), FanotifyMasks::from_raw(mask),
                                          mark_type(type),
                                          Flags<FanotifyMarkFlag>::from_raw(flags)));
            },
            py::arg("path"), py::arg("mask"), py::arg("type") = "inode", py::arg("flags") = 0)
        .def(
            "flush", [](H& h, const std::string& type) { check(h.get().flush(mark_type(type))); },
            py::arg("type") = "inode")
        .def(
            "respond",
            [](H& h, const FanotifyEvent& e, bool allow) { check(h.get().respond(e, allow)); },
            py::arg("event"), py::arg("allow"),
            "Answers a permission event: the open or read proceeds, or fails with EPERM.")
        .def_property_readonly(
            "buffered", [](H& h) { return h.get().buffered(); },
            "Events read from the kernel and not yet returned: select() does not see them.");
    event_like<Fanotify, FanotifyEvent>(cls);
#define BUTTER_FAN(name) m.attr(#name) = static_cast<std::uint64_t>(name)
    BUTTER_FAN(FAN_ACCESS);
    BUTTER_FAN(FAN_MODIFY);
    BUTTER_FAN(FAN_ATTRIB);
    BUTTER_FAN(FAN_CLOSE_WRITE);
    BUTTER_FAN(FAN_CLOSE_NOWRITE);
    BUTTER_FAN(FAN_CLOSE);
    BUTTER_FAN(FAN_OPEN);
    BUTTER_FAN(FAN_MOVED_FROM);
    BUTTER_FAN(FAN_MOVED_TO);
    BUTTER_FAN(FAN_CREATE);
    BUTTER_FAN(FAN_DELETE);
    BUTTER_FAN(FAN_DELETE_SELF);
    BUTTER_FAN(FAN_MOVE_SELF);
    BUTTER_FAN(FAN_OPEN_EXEC);
    BUTTER_FAN(FAN_Q_OVERFLOW);
    BUTTER_FAN(FAN_OPEN_PERM);
    BUTTER_FAN(FAN_ACCESS_PERM);
    BUTTER_FAN(FAN_OPEN_EXEC_PERM);
    BUTTER_FAN(FAN_ONDIR);
    BUTTER_FAN(FAN_EVENT_ON_CHILD);
    BUTTER_FAN(FAN_CLASS_NOTIF);
    BUTTER_FAN(FAN_CLASS_CONTENT);
    BUTTER_FAN(FAN_CLASS_PRE_CONTENT);
    BUTTER_FAN(FAN_UNLIMITED_QUEUE);
    BUTTER_FAN(FAN_UNLIMITED_MARKS);
    BUTTER_FAN(FAN_REPORT_TID);
    BUTTER_FAN(FAN_REPORT_FID);
    BUTTER_FAN(FAN_REPORT_DIR_FID);
    BUTTER_FAN(FAN_REPORT_NAME);
    BUTTER_FAN(FAN_REPORT_DFID_NAME);
    BUTTER_FAN(FAN_MARK_DONT_FOLLOW);
    BUTTER_FAN(FAN_MARK_ONLYDIR);
#undef BUTTER_FAN
}

// ---- seccomp -----------------------------------------------------------------------------------

namespace {

SeccompAction action_of(const py::object& a) {
    if (py::isinstance<py::str>(a))
        return value(SeccompAction::parse(no_nul(a.cast<std::string>(), "seccomp action")));
    if (!py::isinstance<SeccompAction>(a))
        throw py::type_error("seccomp: an action is a str ('errno:EPERM') or a SeccompAction");
    return a.cast<SeccompAction>();
}

ArgOp arg_op(const std::string& op) {
    static const std::pair<const char*, ArgOp> ops[] = {
        {"==", ArgOp::Eq}, {"!=", ArgOp::Ne}, {"<", ArgOp::Lt},        {"<=", ArgOp::Le},
        {">", ArgOp::Gt},  {">=", ArgOp::Ge}, {"&==", ArgOp::MaskedEq}};
    for (const auto& [name, o] : ops)
        if (op == name) return o;
    throw py::value_error("seccomp: comparison '" + op + "': ==, !=, <, <=, >, >= or &==");
}

// (index, op, value[, mask]) tuples.
std::vector<ArgCondition> conditions_of(const std::vector<py::tuple>& in) {
    std::vector<ArgCondition> out;
    for (const py::tuple& t : in) {
        if (t.size() < 3 || t.size() > 4)
            throw py::value_error("seccomp: a condition is (index, op, value[, mask])");
        ArgCondition c;
        c.index = t[0].cast<unsigned>();
        if (c.index > 5)
            throw py::value_error("seccomp: argument index " + std::to_string(c.index));
        c.op = arg_op(t[1].cast<std::string>());
        // Negative values as the C argument has them (AT_FDCWD is -100): two's complement.
        auto u64 = [](py::handle v) {
            if (!py::isinstance<py::int_>(v)) throw py::type_error("seccomp: values are ints");
            py::int_ i = py::reinterpret_borrow<py::int_>(v);
            if (i < py::int_(0)) {
                if (i < py::int_(INT64_MIN)) throw py::value_error("seccomp: value below -2**63");
                return static_cast<std::uint64_t>(i.cast<std::int64_t>());
            }
            return i.cast<std::uint64_t>();
        };
        c.value = u64(t[2]);
        if (t.size() == 4) c.mask = u64(t[3]);
        if (c.op == ArgOp::MaskedEq && t.size() != 4)
            throw py::value_error("seccomp: &== needs a mask");
        out.push_back(c);
    }
    return out;
}

}  // namespace

void bind_seccomp(py::module_& m) {
    py::class_<SeccompAction>(m, "SeccompAction")
        .def(py::init([](const std::string& text) { return value(SeccompAction::parse(text)); }),
             py::arg("text"),
             "'allow', 'errno:EPERM', 'kill', 'kill-thread', 'trap', 'log', "
             "'notify' or 'trace:N'.")
        .def("__str__", &SeccompAction::to_string)
        .def("__repr__",
             [](const SeccompAction& a) { return "SeccompAction('" + a.to_string() + "')"; })
        .def("__eq__", [](const SeccompAction& a, const SeccompAction& b) { return a == b; });
    py::class_<SeccompFilter>(m, "SeccompFilter")
        .def(py::init([](const py::object& default_action) {
                 return value(SeccompFilter::create(action_of(default_action)));
             }),
             py::arg("default_action") = "allow")
        .def(
            "add_rule",
            [](SeccompFilter& f, const py::object& action, const py::object& syscall,
               const std::vector<py::tuple>& conditions) {
                auto cs = conditions_of(conditions);
                if (py::isinstance<py::str>(syscall))
                    check(f.add_rule(action_of(action),
                                     no_nul(syscall.cast<std::string>(), "syscall name"), cs));
                else if (py::isinstance<py::int_>(syscall))
                    check(f.add_rule(action_of(action), syscall.cast<int>(), cs));
                else
                    throw py::type_error("seccomp: a syscall is a name or a number");
            },
            py::arg("action"), py::arg("syscall"), py::arg("conditions") = std::vector<py::tuple>{},
            "A rule for a system call (a name or a number), with (index, op, value[, mask]) "
            "conditions on its arguments, all of which must hold.")
        .def(
            "add_arch", [](SeccompFilter& f, const std::string& a) { check(f.add_arch(a)); },
            py::arg("arch"))
        .def(
            "set_bad_arch_action",
            [](SeccompFilter& f, const py::object& a) {
                check(f.set_bad_arch_action(action_of(a)));
            },
            py::arg("action"))
        .def(
            "set_no_new_privs", [](SeccompFilter& f, bool on) { check(f.set_no_new_privs(on)); },
            py::arg("on"))
        .def(
            "export_bpf",
            [](const SeccompFilter& f) {
                BpfProgram p = value(f.export_bpf());
                return py::bytes(reinterpret_cast<const char*>(p.data()),
                                 p.size() * sizeof(struct sock_filter));
            },
            "The compiled classic BPF program (struct sock_filter[]).")
        .def(
            "load", [](const SeccompFilter& f) { check(f.load()); },
            "Loads the filter into the calling thread (and the children it makes from now on); "
            "there is no way back.")
        .def(
            "load_with_listener",
            [](const SeccompFilter& f) {
                auto h = std::make_shared<Handle<SeccompNotifyFd>>("SeccompNotifyFd");
                Fd fd = value(f.load_with_listener());
                // Non-blocking, as every object here: a blocking read waits in poll.
                if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK) < 0)
                    raise(Error::from_errno("fcntl(F_SETFL)"));
                h->obj.emplace(std::move(fd));
                return h;
            },
            "Loads it and returns the listener (a SeccompNotifyFd) of its 'notify' rules.");
    m.def(
        "resolve_syscall",
        [](const std::string& n) { return value(resolve_syscall(no_nul(n, "syscall name"))); },
        py::arg("name"));
    m.def(
        "syscall_name", [](int nr) { return syscall_name(nr); }, py::arg("nr"));
    m.def(
        "seccomp_action_available",
        [](const py::object& a) { return value(seccomp_action_available(action_of(a))); },
        py::arg("action"));

    using N = Handle<SeccompNotifyFd>;
    py::class_<SeccompNotification>(m, "SeccompNotification")
        .def_readonly("id", &SeccompNotification::id)
        .def_readonly("pid", &SeccompNotification::pid)
        .def_readonly("syscall_nr", &SeccompNotification::syscall_nr)
        .def_readonly("arch", &SeccompNotification::arch)
        .def_readonly("instruction_pointer", &SeccompNotification::instruction_pointer)
        .def_readonly("args", &SeccompNotification::args)
        .def_property_readonly("syscall_name", &SeccompNotification::syscall_name)
        .def("__repr__", [](const SeccompNotification& n) {
            return "<SeccompNotification " + n.to_string() + ">";
        });
    py::class_<N, std::shared_ptr<N>> notify(m, "SeccompNotifyFd");
    notify
        .def(py::init([](int fd, bool blocking) {
                 // An fd the caller got (from a child, over a socket): ours from now on.
                 int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
                 if (own < 0) raise(Error::from_errno("fcntl(F_DUPFD_CLOEXEC)"));
                 if (::fcntl(own, F_SETFL, ::fcntl(own, F_GETFL) | O_NONBLOCK) < 0) {
                     ::close(own);
                     raise(Error::from_errno("fcntl(F_SETFL)"));
                 }
                 auto h = std::make_shared<N>("SeccompNotifyFd");
                 h->obj.emplace(Fd(own));
                 h->blocking = blocking;
                 return h;
             }),
             py::arg("fd"), py::arg("blocking") = true,
             "A listener fd received from elsewhere (duplicated: close yours).")
        .def(
            "respond_errno",
            [](N& h, std::uint64_t id, int err) { check(h.get().respond_errno(id, err)); },
            py::arg("id"), py::arg("errno"))
        .def(
            "respond_value",
            [](N& h, std::uint64_t id, std::int64_t v) { check(h.get().respond_value(id, v)); },
            py::arg("id"), py::arg("value"))
        .def(
            "respond_continue", [](N& h, std::uint64_t id) { check(h.get().respond_continue(id)); },
            py::arg("id"))
        .def(
            "id_valid", [](N& h, std::uint64_t id) { return value(h.get().id_valid(id)); },
            py::arg("id"));
    event_like<SeccompNotifyFd, SeccompNotification>(notify);
}

// ---- AIO ---------------------------------------------------------------------------------------

namespace {

// A request as Python builds it: the buffers stay referenced until its completion is read.
struct PyAioRequest {
    AioRequest::Op op = AioRequest::Op::Read;
    int fd = -1;
    std::int64_t offset = 0;
    std::vector<py::buffer> buffers;
    py::object data = py::none();
};

struct PyAioCompletion {
    py::object data;
    std::int64_t result = 0;
};

}  // namespace

BUTTER_PY_BOUND(PyAioRequest);
BUTTER_PY_BOUND(PyAioCompletion);

namespace {

// What an in-flight request holds.
struct InFlight {
    std::vector<Buffer> views;
    std::vector<struct iovec> iov;
    py::object data;
};

class PyAioContext {
  public:
    PyAioContext(unsigned max_events, bool blocking)
        : handle_(std::make_shared<Handle<AioContext>>("AIOContext")) {
        handle_->obj.emplace(value(AioContext::create(max_events, AioFlag::NonBlock)));
        handle_->blocking = blocking;
    }
    // io_destroy (which waits for what is in flight) before the buffers are let go.
    ~PyAioContext() { handle_->close(); }
    PyAioContext(const PyAioContext&) = delete;
    PyAioContext& operator=(const PyAioContext&) = delete;

    std::size_t submit(const std::vector<PyAioRequest>& requests) {
        std::vector<AioRequest> raw;
        std::vector<std::uint64_t> ids;
        for (const PyAioRequest& r : requests) {
            bool writes_memory = r.op == AioRequest::Op::Read || r.op == AioRequest::Op::ReadV;
            InFlight f;
            f.data = r.data;
            for (const py::buffer& b : r.buffers) {
                f.views.emplace_back(b, writes_memory);
                f.iov.push_back(f.views.back().iov());
            }
            std::uint64_t id = next_id_++;
            auto [it, _] = in_flight_.emplace(id, std::move(f));
            const InFlight& held = it->second;
            AioRequest a;
            a.op = r.op;
            a.fd = r.fd;
            a.offset = r.offset;
            a.user_data = id;
            if (r.op == AioRequest::Op::Read || r.op == AioRequest::Op::Write) {
                a.buffer = held.iov[0].iov_base;
                a.length = held.iov[0].iov_len;
            } else if (r.op == AioRequest::Op::ReadV || r.op == AioRequest::Op::WriteV) {
                a.iov = held.iov.data();
                a.iov_count = held.iov.size();
            }
            raw.push_back(a);
            ids.push_back(id);
        }
        auto queued = handle_->get().submit(raw);
        std::size_t n = queued ? *queued : 0;
        for (std::size_t i = n; i < ids.size(); ++i)
            in_flight_.erase(ids[i]);  // not queued: the caller's to submit again
        if (!queued) raise(queued.error());
        return n;
    }

    std::optional<PyAioCompletion> read_event(std::optional<double> timeout) {
        auto c = handle_->read_event<AioCompletion>(timeout);
        if (!c) return std::nullopt;
        return complete(*c);
    }
    std::vector<PyAioCompletion> read_events(std::optional<double> timeout) {
        std::vector<PyAioCompletion> out;
        for (const AioCompletion& c : handle_->read_events<AioCompletion>(timeout))
            out.push_back(complete(c));
        return out;
    }
    int fileno() { return handle_->fileno(); }
    // io_destroy waits for what is in flight; then the buffers may go.
    void close() {
        handle_->close();
        in_flight_.clear();
    }
    bool closed() const { return handle_->closed(); }
    std::size_t in_flight() { return handle_->get().in_flight(); }

  private:
    PyAioCompletion complete(const AioCompletion& c) {
        PyAioCompletion out;
        out.result = c.result;
        auto it = in_flight_.find(c.user_data);
        out.data = it == in_flight_.end() ? py::none() : it->second.data;
        if (it != in_flight_.end()) in_flight_.erase(it);
        return out;
    }
    std::shared_ptr<Handle<AioContext>> handle_;
    std::map<std::uint64_t, InFlight> in_flight_;
    std::uint64_t next_id_ = 1;
};

PyAioRequest request(AioRequest::Op op, int fd, std::vector<py::buffer> buffers,
                     std::int64_t offset, py::object data) {
    if (offset < 0) throw py::value_error("aio: a negative offset");
    // A read needs buffers it may write (BufferError now, not at submit).
    if (op == AioRequest::Op::Read || op == AioRequest::Op::ReadV)
        for (const py::buffer& b : buffers)
            (void)b.request(true);
    PyAioRequest r;
    r.op = op;
    r.fd = fd;
    r.offset = offset;
    r.buffers = std::move(buffers);
    r.data = std::move(data);
    return r;
}

}  // namespace

BUTTER_PY_BOUND(PyAioContext);

void bind_aio(py::module_& m) {
    py::class_<PyAioRequest>(m, "AIORequest")
        .def_readonly("fd", &PyAioRequest::fd)
        .def_readonly("offset", &PyAioRequest::offset)
        .def_readonly("data", &PyAioRequest::data);
    py::class_<PyAioCompletion>(m, "AIOCompletion")
        .def_readonly("data", &PyAioCompletion::data)
        .def_readonly("result", &PyAioCompletion::result)
        .def_property_readonly("ok", [](const PyAioCompletion& c) { return c.result >= 0; })
        .def_property_readonly(
            "errno",
            [](const PyAioCompletion& c) { return c.result < 0 ? static_cast<int>(-c.result) : 0; })
        .def("__repr__", [](const PyAioCompletion& c) {
            return "<AIOCompletion result=" + std::to_string(c.result) + ">";
        });
    m.def(
        "aio_read",
        [](int fd, py::buffer b, std::int64_t off, py::object data) {
            return request(AioRequest::Op::Read, fd, {std::move(b)}, off, std::move(data));
        },
        py::arg("fd"), py::arg("buffer"), py::arg("offset"), py::arg("data") = py::none());
    m.def(
        "aio_write",
        [](int fd, py::buffer b, std::int64_t off, py::object data) {
            return request(AioRequest::Op::Write, fd, {std::move(b)}, off, std::move(data));
        },
        py::arg("fd"), py::arg("buffer"), py::arg("offset"), py::arg("data") = py::none());
    m.def(
        "aio_readv",
        [](int fd, std::vector<py::buffer> bs, std::int64_t off, py::object data) {
            return request(AioRequest::Op::ReadV, fd, std::move(bs), off, std::move(data));
        },
        py::arg("fd"), py::arg("buffers"), py::arg("offset"), py::arg("data") = py::none());
    m.def(
        "aio_writev",
        [](int fd, std::vector<py::buffer> bs, std::int64_t off, py::object data) {
            return request(AioRequest::Op::WriteV, fd, std::move(bs), off, std::move(data));
        },
        py::arg("fd"), py::arg("buffers"), py::arg("offset"), py::arg("data") = py::none());
    m.def(
        "aio_fsync",
        [](int fd, py::object data) {
            return request(AioRequest::Op::Fsync, fd, {}, 0, std::move(data));
        },
        py::arg("fd"), py::arg("data") = py::none());
    py::class_<PyAioContext>(m, "AIOContext")
        .def(py::init<unsigned, bool>(), py::arg("max_events") = 128, py::arg("blocking") = true)
        .def("submit", &PyAioContext::submit, py::arg("requests"),
             "io_submit(2): how many were queued, from the front (the rest: submit again).")
        .def("read_event", &PyAioContext::read_event, py::arg("timeout") = py::none())
        .def("read_events", &PyAioContext::read_events, py::arg("timeout") = py::none())
        .def("fileno", &PyAioContext::fileno)
        .def("close", &PyAioContext::close)
        .def_property_readonly("closed", &PyAioContext::closed)
        .def_property_readonly("in_flight", &PyAioContext::in_flight)
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyAioContext& c, py::args) { c.close(); });
}

}  // namespace butter::python
