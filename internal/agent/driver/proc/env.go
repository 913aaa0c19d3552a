package proc

import (
	"os"
	"slices"
	"strconv"
)

// WithEnv returns the live processes whose environment holds kv ("KEY=value")
// exactly. Processes of other users are found only with the privilege to
// read their environment.
func WithEnv(kv string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if slices.Contains(Env(pid), kv) && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
