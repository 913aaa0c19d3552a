package qemu

import (
	"fmt"
	"os"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/driver/runas"
)

// sandbox is QEMU's seccomp filter: no obsolete system calls, no change
// of user or group, no new processes or programs, no scheduler or CPU
// affinity changes. It is why QEMU is started as its user rather than
// dropping to it with -runas (which elevateprivileges=deny forbids), and
// without -daemonize (which forks, forbidden by spawn=deny).
const sandbox = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

// qemuUser resolves the user QEMU runs as. Never root: a QEMU process that
// a guest or a crafted image subverts must not own the node.
func qemuUser(cfg Config) (runas.User, error) {
	if cfg.User == "" {
		if os.Geteuid() == 0 {
			return runas.User{}, fmt.Errorf("qemu workload %q: QEMU would run as root; set user in the qemu block to an unprivileged user that can read and write the disk images (create one with e.g. useradd --system --no-create-home --shell /usr/sbin/nologin clusterguard-qemu, with the same uid on every node)", cfg.Workload)
		}
		return runas.Current()
	}
	u, err := runas.Lookup(cfg.User)
	if err != nil {
		return u, fmt.Errorf("qemu workload %q: %w; create the user (with the same uid on every node) or change user in the qemu block", cfg.Workload, err)
	}
	if u.UID == 0 {
		return u, fmt.Errorf("qemu workload %q: user %q is root; QEMU runs as an unprivileged user: name one that can read and write the disk images", cfg.Workload, cfg.User)
	}
	return u, nil
}
