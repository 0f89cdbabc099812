#!/bin/bash
# GitLab Runner custom executor, cleanup stage (cleanup_exec): remove the job's builds dir and
# any script copy a killed run.sh left. Runs even when an earlier stage failed; its status
# only reaches the runner's log. The reports and the project's cache stay.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/common.sh"

# config.sh never ran, or an earlier cleanup removed it all: nothing to do.
if [[ -z ${BUTTER_CI_JOB_DIR:-} || ! -e $BUTTER_CI_JOB_DIR ]]; then
    exit 0
fi
load_job

# Running as the owner, not root: a job may have left directories without write or search
# permission, which rm -r cannot enter. chmod -R does not follow symlinks.
if ((EUID != 0)); then
    chmod -R u+rwX -- "$job_dir" 2>/dev/null || true
fi
# --one-file-system: never into anything mounted below (nothing should be).
rm -rf --one-file-system -- "$job_dir"
rm -f -- "$report_dir"/*.bash
