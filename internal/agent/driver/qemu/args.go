package qemu

import (
	"fmt"
	"strings"
)

// refusedArgs are QEMU options extra_args may not carry: they open disks
// or files past the driver's checks (-drive, -blockdev, ...), take
// descriptors or sockets (-add-fd, -chardev), or undo the confinement
// (-runas, -chroot, -sandbox, -daemonize, -run-with, -readconfig).
var refusedArgs = []string{
	"drive", "blockdev", "hda", "hdb", "hdc", "hdd", "cdrom", "fda", "fdb", "mtdblock", "sd", "pflash",
	"add-fd", "chardev", "runas", "chroot", "sandbox", "daemonize", "run-with", "readconfig",
}

// CheckExtraArgs refuses extra QEMU arguments that would bypass the disk
// checks or the confinement (refusedArgs), in QEMU's -opt and --opt forms.
func CheckExtraArgs(args []string) error {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue // a value
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		for _, r := range refusedArgs {
			if name == r {
				return fmt.Errorf("extra_args holds %q, which the qemu driver sets itself or refuses: disks are listed in disks (checked before each start), and QEMU's user, sandbox and QMP socket are the driver's; remove it", a)
			}
		}
	}
	return nil
}
