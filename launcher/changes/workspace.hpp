// After a run with an overlay workspace (plan.changes): what the sandbox changed, exported to
// the --changes file, listed (--changes -), and applied to the working directory as
// workspace.commit says.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <butter/error.hpp>
#include <butter/fd.hpp>

#include "changes/changes.hpp"
#include "plan/host_path.hpp"
#include "plan/plan.hpp"

namespace butter::launcher::changes {

struct WorkspaceResult {
    Counts counts;
    bool committed = false;
    std::string commit_error;  // workspace.commit failed (the counts are the export's)
};

// `upper`: the upper directory the child sent (supervisor.hpp's on_changes); `file`: the
// --changes file, opened before the run (nullptr: none, or "-"); `succeeded`: the command
// exited 0; `line`: where --changes - lists each change; `warn`: what the caller should
// know (what the layer left out, a workspace that filled its tmpfs).
[[nodiscard]] Result<WorkspaceResult> finish_workspace(
    const SandboxPlan& plan, const Fd& upper, const HostFile* file, bool succeeded,
    const std::function<void(const std::string&)>& line,
    const std::function<void(const std::string&)>& warn);

}  // namespace butter::launcher::changes
