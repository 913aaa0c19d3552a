package proc

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxEnvRead caps what is read of one process's environment: a process
// may make its environment huge, and a scan of every process must stay
// bounded.
const maxEnvRead = 1 << 20

// Match says which processes belong to a workload: those whose
// environment holds Env ("KEY=value") exactly, and — when Cwd is set —
// those whose working directory is Cwd, unless they run below a process
// that carries the same KEY with another value (the same directory used
// by another agent on this host, a test rig). Descendants of a matched
// process belong to the workload too: a program that rewrites its
// process title over its environment (PostgreSQL's backends,
// setproctitle) no longer carries Env itself.
type Match struct {
	Env string
	Cwd string
	// Comm, when set, limits the match by Cwd to processes of that name
	// (an operator's shell in the directory is not the workload).
	Comm string
}

// Table is one scan of /proc: every live process and its parent.
type Table struct {
	parent map[int]int
	kids   map[int][]int
	env    map[int][]byte // read on demand
}

// Scan reads the parent of every live (not zombie) process but this one.
func Scan() *Table {
	t := &Table{parent: map[int]int{}, kids: map[int][]int{}, env: map[int][]byte{}}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return t
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		_, rest, ok := stat(pid)
		if !ok || len(rest) < 2 || rest[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(rest[1])
		t.parent[pid] = ppid
		t.kids[ppid] = append(t.kids[ppid], pid)
	}
	return t
}

func (t *Table) environ(pid int) []byte {
	if b, ok := t.env[pid]; ok {
		return b
	}
	b := readCapped("/proc/"+strconv.Itoa(pid)+"/environ", maxEnvRead)
	t.env[pid] = b
	return b
}

// hasEnv reports whether pid's environment holds kv exactly.
func (t *Table) hasEnv(pid int, kv string) bool {
	for _, e := range bytes.Split(t.environ(pid), []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// foreign reports whether pid or one of its ancestors carries key= with a
// value other than want.
func (t *Table) foreign(pid int, key, want string) bool {
	for p, n := pid, 0; p > 1 && n < 64; p, n = t.parent[p], n+1 {
		for _, e := range bytes.Split(t.environ(p), []byte{0}) {
			if s := string(e); strings.HasPrefix(s, key) && s != want {
				return true
			}
		}
	}
	return false
}

// Workload returns the processes m matches and all their descendants.
func (t *Table) Workload(m Match) []int {
	in := map[int]bool{}
	var roots []int
	key, _, _ := strings.Cut(m.Env, "=")
	key += "="
	for pid := range t.parent {
		switch {
		case m.Env != "" && t.hasEnv(pid, m.Env):
		case m.Cwd != "" && (m.Comm == "" || comm(pid) == m.Comm) && cwd(pid) == m.Cwd && !(m.Env != "" && t.foreign(pid, key, m.Env)):
		default:
			continue
		}
		roots = append(roots, pid)
	}
	var out []int
	for queue := roots; len(queue) > 0; queue = queue[1:] {
		p := queue[0]
		if in[p] {
			continue
		}
		in[p] = true
		out = append(out, p)
		queue = append(queue, t.kids[p]...)
	}
	return out
}

func comm(pid int) string {
	c, _, _ := stat(pid)
	return c
}

func cwd(pid int) string {
	s, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	return s
}

func readCapped(path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return b
}

// Find returns the workload's processes (see Match) now.
func Find(m Match) []int { return Scan().Workload(m) }

// KillTree kills every process of the workload m matches, descendants
// included; see KillTrees.
func KillTree(m Match, within time.Duration) (killed, left []int) {
	k, l := KillTrees([]Match{m}, within)
	return k[0], l[0]
}

// KillTrees kills every process of the workloads ms match, descendants
// included, all in the same passes (one /proc scan per round for all of
// them). Each pass stops the whole set with SIGSTOP first, looking again
// until no new process appeared (a stopped process cannot fork away, and
// its children are not re-parented out of sight by its death), then
// SIGKILLs it; passes repeat until nothing matches or within passed. It
// returns, per match, the pids signalled and those still alive.
func KillTrees(ms []Match, within time.Duration) (killed, left [][]int) {
	killed = make([][]int, len(ms))
	deadline := time.Now().Add(within)
	seen := map[int]bool{}
	find := func() ([][]int, int) {
		t := Scan()
		sets, n := make([][]int, len(ms)), 0
		for i, m := range ms {
			if m.Env != "" || m.Cwd != "" {
				sets[i] = t.Workload(m)
				n += len(sets[i])
			}
		}
		return sets, n
	}
	for {
		sets, n := find()
		if n == 0 || time.Now().After(deadline) {
			return killed, sets
		}
		stopped := map[int]int{} // pid -> match
		for round := 0; round < 10; round++ {
			fresh := 0
			for i, set := range sets {
				for _, pid := range set {
					if _, ok := stopped[pid]; !ok {
						_ = syscall.Kill(pid, syscall.SIGSTOP)
						stopped[pid] = i
						fresh++
					}
				}
			}
			if fresh == 0 {
				break
			}
			sets, _ = find()
		}
		for pid, i := range stopped {
			if syscall.Kill(pid, syscall.SIGKILL) == nil && !seen[pid] {
				seen[pid] = true
				killed[i] = append(killed[i], pid)
			}
		}
		time.Sleep(10 * time.Millisecond) // let the kernel reap before looking again
	}
}
