# Nomad: a batch job that runs a project's test suite (`make test`) inside butter's "ci"
# profile. butter gives the isolation; Nomad schedules, retries and collects the logs.
#
# The raw_exec driver, because butter builds the sandbox itself. raw_exec is disabled by
# default: enable it in each client's configuration,
#
#   plugin "raw_exec" {
#     config {
#       enabled = true
#     }
#   }
#
# It runs the task as the Nomad agent's user (root, as a rule) with no isolation of its own,
# so whoever may submit jobs to these clients can run anything as that user: let raw_exec jobs
# come only from trusted hands (Nomad ACLs), and make them all start butter, as this one does.
#
# Why not the exec driver: it isolates the task itself (a chroot of the host's /bin, /etc,
# /lib, /usr linked or copied into the task directory, private pid and IPC namespaces, cgroups
# sized by resources, a capability set without CAP_SYS_ADMIN). butter inside it would have to
# make its user and mount namespaces and its cgroup inside that chroot, capability set and
# cgroup, which may be refused (the kernel refuses user namespaces to a chrooted process, as with
# the driver's no_pivot_root) and where it works only duplicates them: the layers conflict
# rather than add up. Here the isolation is butter's alone: an empty root with the host's /usr
# and /etc read-only, the checkout the only writable host path, no network, no capabilities,
# a seccomp filter, the ci profile's time, memory and pids limits, a JSON report.
job "unit-tests" {
  type = "batch"

  group "tests" {
    # A failed run is retried as Nomad's restart and reschedule defaults for batch jobs say;
    # add restart { attempts = 0 } and reschedule { attempts = 0 } for a failing suite to fail
    # at once.
    task "run" {
      driver = "raw_exec"

      # The checkout. destination is relative to the task working directory (the task's
      # directory in the allocation), so it lands in local/project: $NOMAD_TASK_DIR/project.
      artifact {
        source      = "git::https://example.com/project.git"
        destination = "local/project"
      }

      config {
        # raw_exec starts the command in the task working directory, not in local/project,
        # and the ci profile's writable workspace is the directory butter starts in (butter
        # run has no --chdir): so cd into the checkout first. That keeps the rest of the task
        # directory (secrets/, private/ with Nomad's tokens, local/) out of the sandbox.
        # Nomad fetched the checkout as root, and butter binds a root-owned directory
        # read-only (a sandbox never writes as host root): as root, hand it to an unprivileged
        # id first. A writable bind writes as its directory's owner, so any non-root id
        # works; 100000 is the one butter runs a root caller's sandbox as (unless
        # /etc/subuid gives root another range). chown -R -h changes symlinks, never what
        # they point to. The report goes beside the checkout, where the sandbox cannot write
        # (read it with `nomad alloc fs ALLOC_ID run/local/butter-report.json`).
        command = "/bin/sh"
        args = ["-c", "cd \"$NOMAD_TASK_DIR/project\" && if [ \"$(id -u)\" = 0 ]; then chown -R -h 100000:100000 .; fi && exec /usr/bin/butter run -p ci --timeout 30m --report \"$NOMAD_TASK_DIR/butter-report.json\" -- make test"]
      }

      # `nomad alloc stop` and job stops: SIGTERM makes butter stop the sandbox gracefully
      # (the profile's stop_signal, then SIGKILL after its stop_timeout, 30 s in ci), where
      # Nomad's default SIGINT would only be passed on to make. Give it that long before
      # Nomad's own SIGKILL.
      kill_signal  = "SIGTERM"
      kill_timeout = "35s"

      # What Nomad schedules by. The sandbox's own limits are the ci profile's (memory 4G,
      # pids 4096, and the --timeout above): keep the two in line, e.g. with
      # --set limits.memory=... in args.
      resources {
        cpu    = 2000
        memory = 4096
      }
    }
  }
}
