#!/bin/bash
# The GitLab Runner custom executor example (packaging/examples/gitlab), driven the way
# gitlab-runner drives it: the runner's environment (BUILD_FAILURE_EXIT_CODE and
# SYSTEM_FAILURE_EXIT_CODE, CUSTOM_ENV_* job variables, TMPDIR = the executor's temp dir), then
# config_exec (its JSON checked and applied: builds_dir, cache_dir, job_env), prepare_exec,
# run_exec with a script in GitLab's own bash style for each stage in GitLab's order, and
# cleanup_exec. Checks each job's outcome and what its sandboxes could and could not write.
# usage: gitlab_executor_test.sh BUTTER_BINARY SOURCE_DIR   (exit 77: git or python3 missing)
# shellcheck disable=SC2016 # the jobs' commands are single-quoted: the job's shell expands them
set -euo pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
(($# == 2)) || fail "usage: $0 BUTTER_BINARY SOURCE_DIR"
butter=$(readlink -f -- "$1")
drivers=$(readlink -f -- "$2")/packaging/examples/gitlab
[[ -x $butter ]] || fail "no butter binary at $1"
[[ -x $drivers/run.sh ]] || fail "no driver scripts in $drivers"
for tool in git python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

tmp=$(mktemp -d /var/tmp/butter-gitlab-test.XXXXXX)
started=()
# ours: the pids of processes working in this test's directory (the drivers, butter).
ours() {
    local p
    for p in /proc/[0-9]*; do
        if [[ $(readlink "$p/cwd" 2>/dev/null) == "$tmp"* ]]; then echo "${p#/proc/}"; fi
    done
}
finish() {
    local status=$? pids
    if ((${#started[@]})); then
        kill "${started[@]}" 2>/dev/null || true
    fi
    pids=$(ours)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086 # a list of pids
        kill $pids 2>/dev/null || true
        sleep 1
    fi
    if ((${#started[@]})); then
        wait "${started[@]}" 2>/dev/null || true
    fi
    rm -rf -- "$tmp"
    exit "$status"
}
trap finish EXIT

# The runner's own environment, which every driver call inherits. Exit codes that differ from
# GitLab's defaults (1, 2) and from each other catch a hard-coded one.
PATH=$(dirname -- "$butter"):$PATH
export PATH
export BUTTER_CI_DIR=$tmp/runner
export BUILD_FAILURE_EXIT_CODE=71 SYSTEM_FAILURE_EXIT_CODE=72
export RUNNER_SECRET=runner-only # e.g. a cache server's key: no job may see it
unset BUTTER_PROFILE_PATH

# The "GitLab server": a project's repository, reached by file:// (bound read-only into every
# sandbox through config.toml's run_args, as an admin would bind a local mirror).
remote=$tmp/remote/grp/proj.git
git init -q -b main "$tmp/src"
echo "hello from the remote" >"$tmp/src/README"
git -C "$tmp/src" add README
git -C "$tmp/src" -c user.name=t -c user.email=t@example.com -c commit.gpgsign=false \
    commit -q -m init
git clone -q --bare "$tmp/src" "$remote"
sha=$(git -C "$tmp/src" rev-parse HEAD)
run_args=(--ro-bind "$tmp/remote")

# A broken ci profile, for butter's own failure.
mkdir -m 0700 "$tmp/badprofiles"
printf 'extends = "builtin:default"\n[limits]\ntime = "ten minutes"\n' >"$tmp/badprofiles/ci.toml"

# gitlab_script < BODY: the script GitLab's bash shell writes for one stage (shells/bash.go),
# in a fresh directory of the executor's temp dir, mode 0700 as the runner writes it.
gitlab_script() {
    local body dir
    body=$(cat)
    dir=$(mktemp -d "$TMPDIR/scriptXXXXXXXXX")
    {
        printf '#!/usr/bin/env bash\n\ntrap exit 1 TERM\n\n'
        printf 'if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n'
        printf 'set +o noclobber\n'
        printf ': | eval %s\n' "$(printf '%q' "$body"$'\n')"
        printf 'exit 0\n'
    } >"$dir/script.bash"
    chmod 0700 "$dir/script.bash"
    echo "$dir/script.bash"
}

# commands CMD...: user commands as GitLab writes them, each echoed first.
commands() {
    local c
    for c in "$@"; do
        printf 'echo %q\n%s\n' $'\e[32;1m$ '"$c"$'\e[0;m' "$c"
    done
}

# exports: the job's variables (GitLab exports them in every stage but prepare_script), a
# file variable written into CI_PROJECT_DIR.tmp as GitLab does.
exports() {
    local v
    for v in "${job_vars[@]}"; do
        printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"
    done
    printf 'mkdir -p %q\n' "$project_dir.tmp"
    printf "printf '%%s' %q > %q\n" "file variable" "$project_dir.tmp/MY_FILE"
    printf 'export MY_FILE=%q\n' "$project_dir.tmp/MY_FILE"
}

stage_body() {
    case $1 in
        prepare_script) echo 'echo "Running on $(hostname) via test-runner..."' ;;
        get_sources)
            # GIT_STRATEGY=clone, as GitLab writes it (shells/abstract.go). One deviation: the
            # remote is a local bare repository owned by host root, which the sandbox sees as
            # nobody's, so git's safe.directory check refuses it; `git -c safe.directory` does
            # not reach the upload-pack a file:// fetch starts, its uploadpack command does.
            local p=$project_dir t=$project_dir.tmp/git-template
            exports
            cat <<EOF
echo "Fetching changes..."
rm -r -f "$p"
mkdir -p "$t"
git config -f "$t/config" init.defaultBranch none
git config -f "$t/config" fetch.recurseSubmodules false
rm -f "$p/.git/index.lock"
rm -f "$p/.git/shallow.lock"
rm -f "$p/.git/HEAD.lock"
rm -f "$p/.git/hooks/post-checkout"
rm -f "$p/.git/config.lock"
git init "$p" --template "$t"
cd "$p"
if git remote add origin "file://$remote" >/dev/null 2>&1; then
  echo "Created fresh repository."
else
  git remote set-url origin "file://$remote"
fi
git -c "http.userAgent=gitlab-runner 16.11.0 linux/amd64" -c "remote.origin.uploadpack=git -c safe.directory=$remote upload-pack" fetch origin "+refs/heads/main:refs/remotes/origin/main" --depth 20 --prune --quiet
echo "Checking out ${sha:0:8} as detached HEAD (ref is main)..."
git checkout -f -q $sha
git clean -ffdx
if git lfs version >/dev/null 2>&1; then
  git lfs pull
  echo
fi
echo "Skipping Git submodules setup"
EOF
            ;;
        restore_cache)
            # gitlab-runner cache-extractor's part, in shell: the cache file below cache_dir.
            exports
            printf 'cd %q\necho "Checking cache for default..."\n' "$project_dir"
            printf 'if [ -f %q ]; then cp %q cache.txt; echo "Successfully extracted cache"; else echo "Failed to extract cache"; fi\n' \
                "$cache_rel" "$cache_rel"
            ;;
        step_script)
            exports
            printf 'cd %q\n' "$project_dir"
            commands "${step[@]}"
            ;;
        after_script)
            exports
            printf 'cd %q\necho "Running after script..."\n' "$project_dir"
            commands "${after[@]}"
            ;;
        archive_cache | archive_cache_on_failure)
            # gitlab-runner cache-archiver's part, in shell.
            exports
            printf 'cd %q\necho "Creating cache default..."\n' "$project_dir"
            printf 'if [ -f cache.txt ]; then mkdir -p %q && cp cache.txt %q; echo "Created cache"; fi\n' \
                "${cache_rel%/*}" "$cache_rel"
            ;;
        upload_artifacts_on_success | upload_artifacts_on_failure)
            exports
            printf 'cd %q\necho "Uploading artifacts..."\nls -la >/dev/null\n' "$project_dir"
            ;;
        cleanup_file_variables) printf 'rm -f %q\n' "$project_dir.tmp/MY_FILE" ;;
    esac
}

# driver NAME EXECUTABLE ARGS...: one driver call; its status must be one GitLab accepts.
driver() {
    local name=$1 rc=0
    shift
    "$@" || rc=$?
    echo "$name $rc" >>"$out/calls"
    case $rc in
        0 | 71 | 72) return "$rc" ;;
        *) fail "$name exited $rc: unknown Custom executor executable exit code" ;;
    esac
}

# job_setup NAME ID PROJECT_ID PROJECT_PATH TIMEOUT [KEY=VALUE...]: the runner's part up to and
# including prepare_exec, in this shell (call it in a subshell).
job_setup() {
    local name=$1 id=$2 project_id=$3 path=$4 timeout=$5
    shift 5
    out=$tmp/jobs/$name
    mkdir -p "$out"
    TMPDIR=$(mktemp -d "$tmp/custom-executorXXXXXXXXX")
    export TMPDIR
    job_vars=(CI=true GITLAB_CI=true CI_JOB_ID="$id" CI_JOB_NAME="$name" CI_JOB_TOKEN=job-token
        CI_PROJECT_ID="$project_id" CI_PROJECT_PATH="$path" CI_PROJECT_NAME="${path##*/}"
        CI_PROJECT_NAMESPACE="${path%/*}" CI_COMMIT_SHA="$sha" CI_COMMIT_REF_NAME=main
        CI_SERVER_URL=https://gitlab.example.com CI_REPOSITORY_URL="file://$remote"
        CI_JOB_TIMEOUT="$timeout" CI_CONCURRENT_ID=0 CI_RUNNER_SHORT_TOKEN=abcd1234 "$@")
    local v
    for v in "${job_vars[@]}"; do export "CUSTOM_ENV_$v"; done

    local rc=0
    driver config "$drivers/config.sh" >"$out/config.json" || rc=$?
    ((rc == 0)) || fail "$name: config_exec exited $rc"
    # As the runner: parse the JSON, take builds_dir and cache_dir, export job_env.
    python3 - "$out/config.json" >"$out/config.sh" <<'EOF' || fail "$name: config_exec's JSON"
import json, shlex, sys
c = json.load(open(sys.argv[1]))
assert isinstance(c["builds_dir"], str) and c["builds_dir"].startswith("/"), c
assert isinstance(c["cache_dir"], str) and c["cache_dir"].startswith("/"), c
assert c["builds_dir_is_shared"] is False, c
assert isinstance(c["hostname"], str) and c["hostname"], c
assert c["driver"]["name"] == "butter" and c["driver"]["version"], c
print("builds_dir=" + shlex.quote(c["builds_dir"]))
print("cache_dir=" + shlex.quote(c["cache_dir"]))
for k, v in c["job_env"].items():
    assert isinstance(v, str), (k, v)
    print("export %s=%s" % (k, shlex.quote(v)))
EOF
    local builds_dir='' cache_dir=''
    # shellcheck source=/dev/null
    . "$out/config.sh"
    # Not shared: CI_PROJECT_DIR is builds_dir/PROJECT_PATH, the cache cache_dir/PROJECT_PATH.
    project_dir=$builds_dir/$path
    cache_file=$cache_dir/$path/default/cache.zip
    # GitLab passes the cache file relative to the project dir (shells/abstract.go cacheFile).
    cache_rel=$(realpath -m --relative-to="$project_dir" -- "$cache_file")
    job_vars+=(CI_BUILDS_DIR="$builds_dir" CI_PROJECT_DIR="$project_dir")
    export CUSTOM_ENV_CI_BUILDS_DIR=$builds_dir CUSTOM_ENV_CI_PROJECT_DIR=$project_dir
    printf '%s\n' "$BUTTER_CI_REPORT_DIR" >"$out/report_dir"
    printf '%s\n' "$project_dir" >"$out/project_dir"
    printf '%s\n' "$cache_file" >"$out/cache_file"
    driver prepare "$drivers/prepare.sh"
}

# stage NAME: run_exec for one stage; its status.
stage() {
    local script
    script=$(stage_body "$1" | gitlab_script)
    driver "$1" "$drivers/run.sh" "${run_args[@]}" "$script" "$1"
}

job_cleanup() {
    driver cleanup "$drivers/cleanup.sh" || true
    rm -rf -- "$TMPDIR"
}

# run_job NAME ID PROJECT_ID PROJECT_PATH TIMEOUT [KEY=VALUE...], with the arrays step and
# after: a whole job, as gitlab-runner's executeScript runs its stages. Writes the job's
# status (the first failing one, as GitLab reports it) to jobs/NAME/status, its output to
# jobs/NAME.log. after_step, if set, names a function run on the host after step_script.
run_job() (
    exec >"$tmp/jobs/$1.log" 2>&1
    local status=0 rc
    job_setup "$@" || status=$?
    if ((status == 0)); then
        for s in prepare_script get_sources restore_cache; do
            stage "$s" || { status=$?; break; }
        done
    fi
    if ((status == 0)); then
        stage step_script || status=$?
        if [[ -n ${after_step:-} ]]; then "$after_step"; fi
        stage after_script || true
    fi
    if ((status == 0)); then
        rc=0
        stage archive_cache || rc=$?
        stage upload_artifacts_on_success || rc=$?
        status=$rc
    else
        stage archive_cache_on_failure || true
        stage upload_artifacts_on_failure || true
    fi
    stage cleanup_file_variables || true
    job_cleanup
    echo "$status" >"$out/status"
)

# expect_job NAME STATUS: the job ended as GitLab would report it, and its log says so.
expect_job() {
    local got
    got=$(cat "$tmp/jobs/$1/status" 2>/dev/null || echo "none")
    if [[ $got != "$2" ]]; then
        sed 's/^/    /' "$tmp/jobs/$1.log" >&2
        fail "job $1 ended with $got, expected $2"
    fi
}

mkdir -p "$tmp/jobs"
SECONDS=0

# A sibling job of another project, set up and left in the middle of its run, whose checkout a
# job must not be able to write. Its own sandbox can (the control).
(
    step=('echo from-sibling > mine.txt')
    job_setup sibling 1000 43 grp/other 60
    stage prepare_script && stage get_sources && stage step_script
) >"$tmp/jobs/sibling.log" 2>&1 || { cat "$tmp/jobs/sibling.log" >&2; fail "the sibling job"; }
sibling_dir=$(cat "$tmp/jobs/sibling/project_dir")
[[ $(cat "$sibling_dir/mine.txt") == from-sibling ]] || fail "the sibling job wrote nothing"

# 1. A passing job: sources cloned, file variables, its own environment, writes that persist
# across stages, a cache archived for the next job; nothing outside its builds dir writable.
check_after_step() {
    [[ $(cat "$project_dir/build.out") == built-by-1001 ]] ||
        fail "the write to the project dir did not reach the host"
}
step=('cannot() { if "$@" 2>/dev/null; then echo "unexpectedly done: $*"; exit 3; fi; }'
    'test "$(cat README)" = "hello from the remote"'
    'test "$(cat "$MY_FILE")" = "file variable"'
    'test "$TMPDIR" = /tmp && test -z "${RUNNER_SECRET:-}" && test -z "${CUSTOM_ENV_CI_JOB_ID:-}"'
    'echo built-by-1001 > build.out && echo cached-by-1001 > cache.txt'
    'cannot touch "$SIBLING/pwned"'
    'cannot mkdir "$CI_BUILDS_DIR/../pwned"'
    'cannot touch "$REPORTS/step_script.json"'
    'cannot test -e "$REPORTS"'
    'cannot touch /usr/pwned')
after=('test "$(cat build.out)" = built-by-1001')
after_step=check_after_step run_job pass 1001 42 grp/proj 60 SIBLING="$sibling_dir" \
    REPORTS="$tmp/runner/reports"
expect_job pass 0
[[ ! -e $sibling_dir/pwned && ! -e $tmp/runner/builds/pwned ]] || fail "a job wrote outside its builds dir"
[[ $(cat "$(cat "$tmp/jobs/pass/cache_file")") == cached-by-1001 ]] || fail "no cache on the host"
[[ ! -e $(cat "$tmp/jobs/pass/project_dir") ]] || fail "cleanup_exec left the builds dir"
grep -q '^get_sources 0$' "$tmp/jobs/pass/calls" || fail "get_sources"
echo "passing job, sources, isolation: ok"

# 2. The next job of the project gets the cache back (in a fresh builds dir).
step=('test "$(cat cache.txt)" = cached-by-1001' 'test ! -e build.out')
after=()
run_job cache 1002 42 grp/proj 60
expect_job cache 0
echo "cache across jobs: ok"

# 3. The job script fails; then `exit 125`, which is not butter's own 125.
step=('echo failing' 'exit 42')
after=('echo after-ran')
run_job fail42 1003 42 grp/proj 60
expect_job fail42 71
grep -q '^after-ran$' "$tmp/jobs/fail42.log" || fail "after_script did not run after a failure"
grep -q '^upload_artifacts_on_failure 0$' "$tmp/jobs/fail42/calls" || fail "upload_artifacts_on_failure"
report=$(cat "$tmp/jobs/fail42/report_dir")/step_script.json
grep -q '"exit_code": 42,' "$report" || fail "the report of step_script: $(cat "$report")"
step=('exit 125')
run_job exit125 1004 42 grp/proj 60
expect_job exit125 71
echo "failing job (exit 42, exit 125): ok"

# 4. The job outlives its timeout: a build failure, promptly, with the reason in the log.
start=$SECONDS
step=('sleep 30')
run_job timeout 1005 42 grp/proj 2
expect_job timeout 71
grep -q 'butter: job stopped at its time limit of 2s' "$tmp/jobs/timeout.log" ||
    fail "no time limit line in: $(cat "$tmp/jobs/timeout.log")"
((SECONDS - start < 15)) || fail "the timed-out job took $((SECONDS - start)) s"
echo "job timeout: ok"

# 5. GitLab cancels the job (or its own timeout runs out): SIGTERM to run_exec's process group,
# which gitlab-runner makes it lead. butter stops the sandbox; the job's processes get SIGTERM.
(
    step=('touch started' 'sleep 30')
    job_setup cancel 1007 42 grp/proj 60
    stage prepare_script
    stage get_sources
    script=$(stage_body step_script | gitlab_script)
    start=$SECONDS
    setsid "$drivers/run.sh" "${run_args[@]}" "$script" step_script &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        [[ -e $project_dir/started ]] && break
        sleep 0.1
    done
    [[ -e $project_dir/started ]] || fail "the job to cancel never started"
    kill -TERM -- "-$pid"
    rc=0
    wait "$pid" || rc=$?
    ((rc == 71)) || fail "a cancelled job's run_exec exited $rc"
    ((SECONDS - start < 15)) || fail "the cancelled job took $((SECONDS - start)) s to stop"
    job_cleanup
) >"$tmp/jobs/cancel.log" 2>&1 || { cat "$tmp/jobs/cancel.log" >&2; fail "cancelling a job"; }
grep -q 'butter: job stopped on request' "$tmp/jobs/cancel.log" || fail "no stop line in: $(cat "$tmp/jobs/cancel.log")"
echo "cancelled job: ok"

# 6. butter itself fails (its ci profile does not load): a system failure.
step=('true')
BUTTER_PROFILE_PATH=$tmp/badprofiles run_job badprofile 1006 42 grp/proj 60
expect_job badprofile 72
grep -q 'ci.toml:3:8: limits.time' "$tmp/jobs/badprofile.log" || fail "butter's error is not in the log"
echo "butter's own failure: ok"

# 7. Two jobs of one project at once: each its own builds dir and reports.
step=('sleep 1' 'echo one > out.txt')
run_job concurrent1 2001 42 grp/proj 60 &
started+=($!)
step=('sleep 1' 'exit 42')
run_job concurrent2 2002 42 grp/proj 60 &
started+=($!)
wait "${started[@]}" || true
started=()
expect_job concurrent1 0
expect_job concurrent2 71
r1=$(cat "$tmp/jobs/concurrent1/report_dir")
r2=$(cat "$tmp/jobs/concurrent2/report_dir")
[[ $r1 != "$r2" ]] || fail "two jobs share $r1"
grep -q '"status": 0,' "$r1/step_script.json" || fail "job 2001's report: $(cat "$r1/step_script.json")"
grep -q '"status": 42,' "$r2/step_script.json" || fail "job 2002's report: $(cat "$r2/step_script.json")"
[[ ! -e $r1/step_script.bash && ! -e $r2/step_script.1.bash ]] || fail "a script copy was left"
# Even a job claiming another's CI_JOB_ID gets directories of its own.
for i in 1 2; do
    CUSTOM_ENV_CI_JOB_ID=2001 CUSTOM_ENV_CI_PROJECT_ID=42 "$drivers/config.sh" >"$tmp/jobs/dup$i.json"
done
! cmp -s "$tmp/jobs/dup1.json" "$tmp/jobs/dup2.json" ||
    fail "config_exec gave two jobs with one id the same directories"
echo "concurrent jobs, reports: ok"

# Those two, and the sibling job, end; nothing of any job is left in the builds tree.
for json in "$tmp/jobs/dup1.json" "$tmp/jobs/dup2.json" "$tmp/jobs/sibling/config.json"; do
    (
        eval "$(python3 -c 'import json, shlex, sys
for k, v in json.load(open(sys.argv[1]))["job_env"].items(): print("export %s=%s" % (k, shlex.quote(v)))' "$json")"
        "$drivers/cleanup.sh"
    ) || fail "cleanup_exec for $json"
done
leftover=$(find "$tmp/runner/builds" -mindepth 1 -maxdepth 1)
[[ -z $leftover ]] || fail "left in the builds tree: $leftover"
left=$(ours)
[[ -z $left ]] || fail "processes left running in $tmp: $left"
echo "gitlab executor: all ok in ${SECONDS}s"
