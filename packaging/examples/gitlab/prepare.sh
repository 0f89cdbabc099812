#!/bin/bash
# GitLab Runner custom executor, prepare stage (prepare_exec): make the job's directories
# writable for its sandboxes. Its output goes to the job log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/common.sh"
need_butter
load_job

# GitLab derives CI_PROJECT_DIR from config.sh's builds_dir; anywhere else (an old runner that
# ignores config_exec's builds_dir, or an overridden variable) the job's scripts would cd into
# a directory its sandbox does not have.
project_dir=${CUSTOM_ENV_CI_PROJECT_DIR:-}
[[ $project_dir == "$job_dir"/* && $project_dir != *..* ]] ||
    fail_system "CI_PROJECT_DIR '$project_dir' is not inside this job's builds dir '$job_dir'"

# The cache directory lies right below the root-owned cache root, which no sandbox sees: no
# one can have put a symlink in its place. Two jobs of one project may race to make it.
mkdir -m 0700 -- "$cache_dir" 2>/dev/null || true
in_root "$cache_dir" "$cache_root" '^project-[0-9]+$' || fail_system "cannot make '$cache_dir'"

# butter binds a root-owned directory read-only (a sandbox never writes as host root) and a
# writable bind writes as the directory's owner: as root, give both to the sandbox's ids.
# Non-recursive: only these two directories, which this driver made.
if ((EUID == 0)); then
    owner=$(sandbox_owner)
    chown -- "$owner" "$job_dir" "$cache_dir"
fi

echo "butter $(butter --version | cut -d' ' -f2): every stage runs in a new sandbox; writable:" \
    "$job_dir (this job's builds dir) and $cache_dir (this project's cache)"
