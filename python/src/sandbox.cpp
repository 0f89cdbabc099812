// butter._butter, continued: butter.sandbox, a command run in a sandbox from a profile as the
// butter program runs it (libbutter-sandbox's run_sandbox), its outcome as a Python object.
#include <butter/sandbox.hpp>

#include "common.hpp"

namespace butter::python {

BUTTER_PY_BOUND(SandboxProfile);
BUTTER_PY_BOUND(SandboxOutcome);

namespace {

// The report's "reason" words for the same ends (README.md's report table).
std::string outcome_kind(SandboxOutcome::Kind k) {
    switch (k) {
        case SandboxOutcome::Kind::Exited:
            return "exited";
        case SandboxOutcome::Kind::Signaled:
            return "signaled";
        case SandboxOutcome::Kind::TimedOut:
            return "time_limit";
        case SandboxOutcome::Kind::SetupFailed:
            return "setup_failed";
        case SandboxOutcome::Kind::ExecFailed:
            return "exec_failed";
    }
    return "?";
}

std::vector<SandboxOptions::Bind> binds_of(const std::vector<py::object>& in) {
    std::vector<SandboxOptions::Bind> out;
    for (const py::object& b : in) {
        if (py::isinstance<py::tuple>(b) || py::isinstance<py::list>(b)) {
            py::sequence t = py::reinterpret_borrow<py::sequence>(b);
            if (t.size() != 2) throw py::type_error("sandbox: a bind is a path or (host, inside)");
            out.push_back({fs_bytes(t[0]), fs_bytes(t[1])});
        } else {
            out.push_back({fs_bytes(b), ""});
        }
    }
    return out;
}

}  // namespace

void bind_sandbox(py::module_& m) {
    py::class_<SandboxProfile>(m, "Profile")
        .def_static("builtin", &SandboxProfile::builtin, "The built-in default profile.")
        .def_static(
            "load", [](py::object name) { return value(SandboxProfile::load(fs_bytes(name))); },
            py::arg("name_or_path"),
            "A profile by name (as butter -p NAME finds it) or path; ValueError naming the "
            "file, line and column for a bad one.")
        .def_static(
            "parse",
            [](const std::string& toml, const std::string& origin) {
                return value(SandboxProfile::parse(toml, no_nul(origin, "origin")));
            },
            py::arg("toml"), py::arg("origin") = "<string>")
        .def(
            "set",
            [](SandboxProfile& p, const std::string& key, const std::string& toml_value) {
                check(p.set(no_nul(key, "key"), no_nul(toml_value, "value")));
            },
            py::arg("key"), py::arg("toml_value"),
            "As --set KEY=VALUE (the value in TOML: '\"2G\"', 'true'), checked now.")
        .def("to_toml", &SandboxProfile::to_toml);

    py::class_<SandboxOutcome>(m, "Outcome")
        .def_property_readonly("kind", [](const SandboxOutcome& o) { return outcome_kind(o.kind); })
        .def_readonly("code", &SandboxOutcome::code)
        .def_readonly("signal", &SandboxOutcome::signal)
        .def_readonly("exec_errno", &SandboxOutcome::exec_errno)
        .def_readonly("message", &SandboxOutcome::message)
        .def_property_readonly("exit_status", &SandboxOutcome::exit_status,
                               "The butter program's exit status for it (124: time limit, 125: "
                               "set-up failed, 126/127: not executable/not found, 128+N).")
        .def_property_readonly("wall", [](const SandboxOutcome& o) { return as_seconds(o.wall); })
        .def_property_readonly("user_cpu",
                               [](const SandboxOutcome& o) { return as_seconds(o.user_cpu); })
        .def_property_readonly("system_cpu",
                               [](const SandboxOutcome& o) { return as_seconds(o.system_cpu); })
        .def_readonly("max_rss_bytes", &SandboxOutcome::max_rss_bytes)
        .def_readonly("limits_hit", &SandboxOutcome::limits_hit)
        .def_readonly("denied", &SandboxOutcome::denied)
        .def_readonly("report", &SandboxOutcome::report, "The JSON report (a str).")
        .def("__repr__", [](const SandboxOutcome& o) {
            return "<Outcome " + outcome_kind(o.kind) +
                   " exit_status=" + std::to_string(o.exit_status()) + ">";
        });

    m.def(
        "run_sandbox",
        [](const SandboxProfile& profile, const std::vector<py::object>& command,
           const std::vector<py::object>& binds, const std::vector<py::object>& ro_binds,
           std::optional<double> timeout, int stdout_fd, int stderr_fd, int verbosity,
           py::object on_event) {
            if (command.empty()) throw py::value_error("sandbox: an empty command");
            if (stdout_fd < 0 || stderr_fd < 0)
                throw py::value_error("sandbox: stdout and stderr are open descriptors");
            SandboxOptions o;
            for (const py::object& a : command)
                o.command.push_back(fs_bytes(a));
            o.binds = binds_of(binds);
            o.ro_binds = binds_of(ro_binds);
            if (timeout) o.timeout = seconds(*timeout);
            o.stdout_fd = stdout_fd;
            o.stderr_fd = stderr_fd;
            o.verbosity = verbosity;
            // Events come on this thread while the run holds no GIL: each takes it back. The
            // callable is shared, so that copies of the std::function never touch its
            // reference count without the GIL (this frame holds the last reference).
            auto callback = std::make_shared<py::object>(std::move(on_event));
            if (!callback->is_none())
                o.on_event = [callback](std::string_view json) {
                    py::gil_scoped_acquire locked;
                    try {
                        (*callback)(py::str(json.data(), json.size()));
                    } catch (py::error_already_set& e) {
                        e.discard_as_unraisable("butter.sandbox on_event");
                    }
                };
            std::optional<Result<SandboxOutcome>> r;
            {
                py::gil_scoped_release unlocked;
                r.emplace(run_sandbox(profile, std::move(o)));
            }
            return value(std::move(*r));
        },
        py::arg("profile"), py::arg("command"), py::arg("binds") = std::vector<py::object>{},
        py::arg("ro_binds") = std::vector<py::object>{}, py::arg("timeout") = py::none(),
        py::arg("stdout") = 1, py::arg("stderr") = 2, py::arg("verbosity") = 1,
        py::arg("on_event") = py::none());
}

}  // namespace butter::python
