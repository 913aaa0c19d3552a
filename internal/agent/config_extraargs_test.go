package agent

import (
	"strings"
	"testing"
)

// extra_args that open disks past the driver's checks, or undo QEMU's
// confinement, are refused when the config is loaded.
func TestQEMUExtraArgsBypassingTheDiskChecksAreRefused(t *testing.T) {
	for _, arg := range []string{"-drive", "--blockdev", "-hda", "-cdrom", "-add-fd", "-chardev", "-runas", "-sandbox", "-daemonize", "-run-with"} {
		t.Run(arg, func(t *testing.T) {
			e := newConfigEnv(t)
			src := e.render(`node = "n2"
listen = "127.0.0.1:7420"
shared_volume = "{{volume}}"
token_file = "{{token}}"

workload "vm" {
  driver = "qemu"
  paths  = ["vms/vm"]
  qemu {
    disks      = ["root.qcow2"]
    extra_args = ["-nic", "none", "` + arg + `", "file=/etc/shadow,format=raw"]
    user       = "nobody"
  }
}
`)
			_, err := ParseConfig("agent.hcl", []byte(src))
			if err == nil || !strings.Contains(err.Error(), "extra_args") || !strings.Contains(err.Error(), arg) {
				t.Fatalf("config with extra_args %s: %v, want a refusal naming it", arg, err)
			}
		})
	}
}
