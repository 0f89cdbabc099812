// The JSON report of a run (`[report] path`, `--report FILE|-`), written even when the command
// or butter failed. Its schema is documented in README.md ("The report").
#pragma once

#include <string>

#include <butter/error.hpp>

#include "plan/host_path.hpp"
#include "plan/plan.hpp"
#include "supervise/supervisor.hpp"

namespace butter::launcher {

std::string report_json(const SandboxPlan& plan, const RunOutcome& outcome);

// What confines the command (the report's "isolation", the "started" event's): the tier and
// why, the Landlock layer (ABI, rules, scopes), and what the tier does not cover.
std::string isolation_json(const SandboxPlan& plan);

// Writes the report into `file` (opened before the run: host_path.hpp), or to stdout when it is
// nullptr (report path "-").
[[nodiscard]] Result<void> write_report(const HostFile* file, const std::string& json);

}  // namespace butter::launcher
