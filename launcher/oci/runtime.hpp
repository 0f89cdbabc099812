// `butter oci` (also the binary run as `butter-oci`): the runc command line that container
// engines use (podman --runtime, containerd's runc shim with BinaryName, CRI-O's runtimes),
// over config.hpp's plan and the same spawn and child as `butter run`.
//
// A container is a directory ROOT/ID (ROOT: --root, default /run/butter-oci for root, else
// $XDG_RUNTIME_DIR/butter-oci), mode 0700, holding state.json (written by butter alone, renamed
// into place) and, from create to start, the FIFO exec.fifo that the container's first process
// waits on before its last steps. create leaves that process behind (no supervisor: the engine
// reaps it, as runc's), start writes the FIFO, kill signals it through a pidfd checked against
// its recorded start time, delete kills and removes what create made (the cgroups too).
#pragma once

#include <string>
#include <vector>

namespace butter::launcher::oci {

// args: what follows "oci" (or the whole command line after argv[0] for `butter-oci`). The
// exit status: 0, 1 for an error (one line on stderr, and in --log), or run's container's.
int main(const std::vector<std::string>& args);

}  // namespace butter::launcher::oci
