#!/bin/bash
# GitLab Runner custom executor, config stage (config_exec): pick this job's directories and
# print the JSON GitLab reads on stdout (stderr goes to the job log).
#
# builds_dir is a fresh directory per job (see common.sh), so the job's workspace is its own:
# a job never sees another project's checkout or a concurrent job's. The price is a fresh
# clone for every job (GIT_STRATEGY fetch finds nothing to reuse); GitLab's cache and
# GIT_DEPTH are the remedies.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/common.sh"
need_butter

job_id=${CUSTOM_ENV_CI_JOB_ID:-}
project_id=${CUSTOM_ENV_CI_PROJECT_ID:-}
[[ $job_id =~ ^[0-9]+$ ]] || fail_system "CUSTOM_ENV_CI_JOB_ID is not a job id: '$job_id'"
[[ $project_id =~ ^[0-9]+$ ]] || fail_system "CUSTOM_ENV_CI_PROJECT_ID is not a project id: '$project_id'"

ensure_dir "$ci_dir" 0755
ensure_dir "$builds_root" 0700
ensure_dir "$cache_root" 0700
ensure_dir "$reports_root" 0700
# mktemp: a name no other job has, made atomically, mode 0700. prepare.sh hands the job
# directory to the sandbox's owner; cleanup.sh removes it.
job_dir=$(mktemp -d -- "$builds_root/$job_id-XXXXXX")
report_dir=$(mktemp -d -- "$reports_root/$job_id-XXXXXX")
cache_dir=$cache_root/project-$project_id

version=$(butter --version)
version=${version#butter }

# json_string VALUE: VALUE as a JSON string. Only our own paths and butter's version come here.
json_string() {
    [[ $1 != *[[:cntrl:]]* ]] || fail_system "unexpected control character in '$1'"
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

cat <<EOF
{
  "builds_dir": $(json_string "$job_dir"),
  "cache_dir": $(json_string "$cache_dir"),
  "builds_dir_is_shared": false,
  "hostname": $(json_string "$(uname -n)"),
  "driver": {"name": "butter", "version": $(json_string "$version")},
  "job_env": {
    "BUTTER_CI_JOB_DIR": $(json_string "$job_dir"),
    "BUTTER_CI_CACHE_DIR": $(json_string "$cache_dir"),
    "BUTTER_CI_REPORT_DIR": $(json_string "$report_dir")
  }
}
EOF
