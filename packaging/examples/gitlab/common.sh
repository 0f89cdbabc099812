# shellcheck shell=bash
# Shared by config.sh, prepare.sh, run.sh and cleanup.sh: GitLab Runner's custom executor
# driven through butter. Sourced, never run.
#
# Layout (BUTTER_CI_DIR, default /var/lib/butter-ci, owned by the runner's user):
#   builds/JOBID-XXXXXX/    one per job, made by config.sh: the job's builds_dir. GitLab puts the
#                           project in it (CI_PROJECT_DIR = builds_dir/GROUP/PROJECT, and its
#                           .tmp sibling for file variables). The only host directory a job can
#                           write besides its project's cache; removed by cleanup.sh.
#   cache/project-ID/       one per project: the job's cache_dir (GitLab adds GROUP/PROJECT/KEY/
#                           cache.zip below it). Kept across jobs; other projects never see it.
#   reports/JOBID-XXXXXX/   one per job: butter's JSON report of each stage (STAGE.json, a
#                           retried stage STAGE.2.json...). Never inside a sandbox, so a job
#                           cannot forge or read them. Kept; prune them as you see fit.
# The roots are mode 0700: only the runner's user sees into them. Each job's directories come
# from mktemp, so concurrent jobs, or a job claiming another's CI_JOB_ID, never share one.
#
# The paths reach the later stages through config.sh's job_env (BUTTER_CI_JOB_DIR,
# BUTTER_CI_CACHE_DIR, BUTTER_CI_REPORT_DIR): set by this driver, not by the job. CUSTOM_ENV_*
# values are the job's variables, which a job can override (GitLab's variable precedence), so
# none of them decides what gets bound.
#
# Settings, from gitlab-runner's own environment (`systemctl edit gitlab-runner`), never from
# the job's:
#   BUTTER_CI_DIR           the layout's root (default /var/lib/butter-ci)
#   BUTTER_CI_OWNER         UID:GID that owns each job's directories when the runner is root
#                           (default: root's first subordinate ids, or 100000:100000). Any
#                           unprivileged ids do: butter idmaps a writable bind so that the
#                           sandbox writes as its owner. Pick ids no user's /etc/subuid range
#                           holds. A root-owned directory would be bound read-only: a sandbox
#                           never writes as host root.
#   BUTTER_CI_REMOTE_CACHE  yes: the cache stages get the network (a [runners.cache] server)
#   BUTTER_PROFILE_PATH     where butter looks for the ci and network-client profiles first
# run_args in config.toml are extra `butter run` options for every stage (--ro-bind /opt/sdk).

# A failure of the driver itself is GitLab's "system failure" (retried where GitLab retries),
# never a random status: the runner accepts only 0 and these two.
# shellcheck disable=SC2034 # run.sh's
build_failure=${BUILD_FAILURE_EXIT_CODE:-1}
system_failure=${SYSTEM_FAILURE_EXIT_CODE:-2}
set -E
trap 'echo "butter: ${BASH_SOURCE[0]##*/}:$LINENO: unexpected failure (status $?)" >&2
      exit "$system_failure"' ERR

fail_system() {
    echo "butter: $*" >&2
    exit "$system_failure"
}

ci_dir=${BUTTER_CI_DIR:-/var/lib/butter-ci}
[[ $ci_dir == /* && $ci_dir != *[[:space:]]* ]] ||
    fail_system "BUTTER_CI_DIR must be an absolute path without spaces: '$ci_dir'"
ci_dir=${ci_dir%/}
builds_root=$ci_dir/builds
cache_root=$ci_dir/cache
reports_root=$ci_dir/reports

need_butter() {
    command -v butter >/dev/null || fail_system "butter is not in PATH ($PATH)"
}

# ensure_dir DIR MODE: create DIR if missing; either way it must be a real directory of ours
# that no one else can write, since everything below it is trusted.
ensure_dir() {
    local dir=$1 mode=$2
    if [[ ! -d $dir ]]; then
        mkdir -p -- "${dir%/*}"
        mkdir -m "$mode" -- "$dir" 2>/dev/null || true # or a concurrent job just made it
    fi
    [[ -d $dir && ! -L $dir ]] || fail_system "$dir is not a directory"
    [[ $(stat -c %u -- "$dir") == "$EUID" ]] || fail_system "$dir is not owned by uid $EUID"
    ((($(stat -c 0%a -- "$dir") & 8#022) == 0)) || fail_system "$dir is writable by others"
}

# in_root PATH ROOT PATTERN: PATH is ROOT/NAME, NAME matches PATTERN (a regex), and it is a
# real directory. Checked again in each stage before anything is bound or removed.
in_root() {
    local path=$1 root=$2 pattern=$3
    local name=${path#"$root"/}
    [[ $path == "$root/$name" && $name =~ $pattern && -d $path && ! -L $path ]]
}

# load_job: the job's directories from config.sh's job_env, checked.
load_job() {
    job_dir=${BUTTER_CI_JOB_DIR:-}
    cache_dir=${BUTTER_CI_CACHE_DIR:-}
    report_dir=${BUTTER_CI_REPORT_DIR:-}
    [[ -n $job_dir && -n $cache_dir && -n $report_dir ]] ||
        fail_system "BUTTER_CI_JOB_DIR, BUTTER_CI_CACHE_DIR, BUTTER_CI_REPORT_DIR unset:" \
            "config_exec must be config.sh, on a GitLab Runner that passes its job_env"
    in_root "$job_dir" "$builds_root" '^[0-9]+-[A-Za-z0-9]+$' ||
        fail_system "not a job directory: '$job_dir'"
    in_root "$report_dir" "$reports_root" '^[0-9]+-[A-Za-z0-9]+$' ||
        fail_system "not a report directory: '$report_dir'"
    # Only its name here: prepare.sh makes the cache directory, cleanup.sh leaves it.
    [[ $cache_dir == "$cache_root/${cache_dir#"$cache_root"/}" &&
        ${cache_dir#"$cache_root"/} =~ ^project-[0-9]+$ ]] ||
        fail_system "not a cache directory: '$cache_dir'"
}

# sandbox_owner: UID:GID for the directories a sandbox writes, when the runner is root.
sandbox_owner() {
    if [[ -n ${BUTTER_CI_OWNER:-} ]]; then
        [[ $BUTTER_CI_OWNER =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] ||
            fail_system "BUTTER_CI_OWNER must be UID:GID, neither 0: '$BUTTER_CI_OWNER'"
        echo "$BUTTER_CI_OWNER"
        return
    fi
    echo "$(first_subid /etc/subuid):$(first_subid /etc/subgid)"
}

first_subid() {
    local name start rest
    if [[ -r $1 ]]; then
        while IFS=: read -r name start rest; do
            if [[ ($name == root || $name == 0) && $start =~ ^[1-9][0-9]*$ ]]; then
                echo "$start"
                return
            fi
        done <"$1"
    fi
    echo 100000
}
