#!/bin/sh
# GitLab custom executor "run" stage: $1 is the script GitLab generated, $2 the stage name.
# Every stage runs in a fresh butter sandbox with the ci profile: the job's builds dir
# read-write, the rest of the host read-only, no network (but for the stages that fetch),
# the job's time limit, and a JSON report next to the build.
set -eu
script=$1
stage=$2
cd "$CUSTOM_ENV_CI_BUILDS_DIR" 2>/dev/null || cd "$(dirname "$script")"
profile=ci
case $stage in
    get_sources|restore_cache|download_artifacts|upload_artifacts_on_success|upload_artifacts_on_failure|archive_cache)
        profile=network-client ;;  # these fetch or upload
esac
exec butter run -p "$profile" \
    --ro-bind "$script:/tmp/job-script" \
    --timeout "${CUSTOM_ENV_CI_JOB_TIMEOUT:-3600}s" \
    --report "$PWD/butter-report-$stage.json" \
    -- sh /tmp/job-script
