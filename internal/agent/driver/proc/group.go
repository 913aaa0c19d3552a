package proc

import (
	"os"
	"strconv"
)

// Group returns the live (not zombie) processes of process group pgid.
func Group(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		_, rest, ok := stat(pid)
		if !ok || len(rest) < 3 || rest[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(rest[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}
