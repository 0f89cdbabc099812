#!/bin/bash
# GitLab Runner custom executor, run stage (run_exec [RUN_ARGS...] SCRIPT STAGE): run the bash
# script GitLab generated for STAGE in a new butter sandbox. RUN_ARGS (config.toml's run_args)
# are extra `butter run` options. Output goes to the job log.
#
# Each stage's sandbox: the host's system read-only, this job's builds dir and this project's
# cache dir read-write, nothing else of /var/lib/butter-ci (other jobs, other projects, the
# reports) at all; no network but for the stages that fetch or upload; the job's timeout; an
# environment of its own (GitLab's script exports the job's variables itself, and the runner's
# environment may hold what a job must not see).
#
# Exit status, the only three GitLab accepts: 0; BUILD_FAILURE_EXIT_CODE when the job failed
# (its script's non-zero status or signal, its time limit, out of memory, a stop); and
# SYSTEM_FAILURE_EXIT_CODE when butter or this driver failed. butter's own 124 and 125 cannot
# tell a script's `exit 124` from a time limit, so the outcome comes from butter's report.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/common.sh"
need_butter

# gitlab-runner stops a job (cancel, its timeout) by signalling run.sh's process group, butter
# included: butter stops the sandbox, and this shell (a trap, not the default of dying) waits
# for it and reports how it ended; or, stopped before butter started, does not start it.
stop_requested=0
trap 'stop_requested=1' TERM INT

(($# >= 2)) || fail_system "usage: run.sh [BUTTER_RUN_OPTION...] SCRIPT STAGE"
script=${*: -2:1}
stage=${*: -1}
extra=("${@:1:$#-2}")
[[ $stage =~ ^[a-z][a-z0-9_]*$ ]] || fail_system "unexpected stage name '$stage'"
[[ -f $script ]] || fail_system "no job script at '$script'"
load_job
[[ -d $cache_dir ]] || fail_system "no cache directory '$cache_dir': was prepare.sh run?"

profile=ci
case $stage in
    get_sources | download_artifacts | upload_artifacts_on_success | upload_artifacts_on_failure)
        profile=network-client ;;
    restore_cache | archive_cache | archive_cache_on_failure)
        # A local cache is files in cache_dir; a [runners.cache] server needs the network.
        if [[ ${BUTTER_CI_REMOTE_CACHE:-no} == yes ]]; then profile=network-client; fi ;;
esac

# GitLab enforces the job's timeout over all its stages; this one keeps any single stage
# within it, also when the runner is gone. The job could lower it, which only hurts itself.
timeout=${CUSTOM_ENV_CI_JOB_TIMEOUT:-3600}
[[ $timeout =~ ^[1-9][0-9]{0,7}$ ]] || timeout=3600

# One report per stage; a retried stage (GET_SOURCES_ATTEMPTS...) keeps every attempt's.
report=$report_dir/$stage.json
attempt=1
while [[ -e $report || -L $report ]]; do
    attempt=$((attempt + 1))
    report=$report_dir/$stage.$attempt.json
done

# The runner writes the script mode 0700 as its own user. A read-only bind keeps the host's
# owner, and the sandbox's root is an unprivileged host id, so it could not read root's file:
# bind a readable copy, which lives in the report directory (mode 0700) for this stage only.
copy=$report_dir/$stage.$attempt.bash
trap 'rm -f -- "$copy"' EXIT
install -m 0444 -- "$script" "$copy"
inside=/run/butter-ci/script.bash

# Inside the sandbox: the job script in a process group of its own, and a stop passed to that
# whole group, as gitlab-runner signals its executors' process groups. butter stops (at the
# time limit, or when GitLab stops run.sh's group) by signalling its command only, and GitLab's
# scripts `trap exit 1 TERM` in a shell that first waits for its foreground child: without
# this, `sleep 600` in a job would run until butter's stop_timeout.
# shellcheck disable=SC2016 # expanded by the shell inside
wrapper='set -m
bash "$1" &
job=$!
set +m
trap "kill -TERM -- -\$job 2>/dev/null" TERM
status=0
wait "$job" || status=$?
while [ -n "$(jobs -rp)" ]; do status=0; wait "$job" || status=$?; done
exit "$status"'

keep='["PATH", "LANG", "LANGUAGE", "LC_ALL", "TZ", "http_proxy", "https_proxy", "no_proxy",
       "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy", "ALL_PROXY"]'

cd -- "$job_dir"
if ((stop_requested)); then
    echo "butter: job stopped on request before its $stage sandbox started" >&2
    exit "$build_failure"
fi
status=0
butter run -p "$profile" --timeout "${timeout}s" --report "$report" \
    --bind "$cache_dir" --ro-bind "$copy:$inside" \
    --set process.env.clear=true --set "process.env.keep=$keep" \
    --set 'process.env.set.TMPDIR="/tmp"' \
    "${extra[@]}" -- bash -c "$wrapper" butter-ci-job "$inside" || status=$?

# The report's "reason" (butter writes it pretty-printed, one key a line; text the job chose
# is JSON-escaped, so it never starts a line). No report: butter failed before the run.
reason=none
if [[ -f $report ]]; then
    reason=$(sed -n 's/^  "reason": "\([a-z_]*\)",$/\1/p' -- "$report")
fi

human() { # seconds -> 1h30m, 2s
    local s=$1 out=
    if ((s >= 3600)); then out+=$((s / 3600))h; fi
    if ((s % 3600 >= 60)); then out+=$((s % 3600 / 60))m; fi
    if ((s % 60 || s < 60)); then out+=$((s % 60))s; fi
    echo "$out"
}

case $reason in
    exited | signaled)
        if ((status == 0)); then exit 0; fi
        exit "$build_failure" ;;
    time_limit)
        echo "butter: job stopped at its time limit of $(human "$timeout") (CI_JOB_TIMEOUT," \
            "stage $stage)" >&2
        exit "$build_failure" ;;
    oom)
        echo "butter: job stopped: out of memory (the profile's limits.memory; stage $stage)" >&2
        exit "$build_failure" ;;
    stop_request)
        echo "butter: job stopped on request (cancelled, or GitLab's timeout; stage $stage)" >&2
        exit "$build_failure" ;;
    setup_failed | exec_failed | restart_limit)
        echo "butter: the $stage sandbox failed ($reason, status $status): see butter's line above" \
            "and $report" >&2
        exit "$system_failure" ;;
    none)
        echo "butter: butter ended with status $status and no report (a bad profile or option:" \
            "see its line above)" >&2
        exit "$system_failure" ;;
    *)
        echo "butter: unknown outcome '$reason' (status $status) in $report" >&2
        exit "$system_failure" ;;
esac
