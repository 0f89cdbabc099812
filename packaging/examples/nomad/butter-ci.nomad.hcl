# Nomad: a batch job whose task runs a test suite inside butter's "ci" profile with the
# raw_exec driver. butter gives the isolation; Nomad schedules, retries and collects logs.
job "unit-tests" {
  type = "batch"

  group "tests" {
    task "run" {
      driver = "raw_exec"

      config {
        command = "/usr/bin/butter"
        args    = ["run", "-p", "ci", "--timeout", "30m", "--report", "-", "--", "make", "test"]
      }

      # The job's workspace: Nomad's task dir, checked out by an artifact stanza.
      artifact {
        source      = "git::https://example.com/project.git"
        destination = "local/project"
      }

      env {
        BUTTER_PROFILE_PATH = "/etc/butter/profiles"
      }

      resources {
        cpu    = 2000
        memory = 4096
      }
    }
  }
}
