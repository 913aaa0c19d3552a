// Package testworkload is a small, real workload for tests and the demo. It
// appends numbered records to a data file on the shared volume, but keeps the
// newest ones in memory and flushes them only every few records — like a
// database with a write buffer. Quiescing it (SIGUSR1, or the quiesce command)
// flushes the buffer, so a backup taken while it is quiesced contains every
// record generated so far; one taken without quiescing misses the buffered ones.
//
// Commands (the exec driver's LSB-style contract):
//
//	run      the workload itself (started detached by start)
//	start    start run in the background unless it is running; exit 0 when running
//	stop     SIGTERM it (it flushes and exits); exit 0 when stopped
//	status   exit 0 when running, 3 when not
//	quiesce  flush and hold writes; exit 0 when the ack file appeared
//	thaw     resume; exit 0 when the ack file is gone
//
// Settings come from flags, else from the environment the agent's exec driver
// sets (CLUSTERGUARD_NODE, CLUSTERGUARD_WORKLOAD, CLUSTERGUARD_PATHS — the first
// path is the data directory —, CLUSTERGUARD_STATE_DIR, plus
// CLUSTERGUARD_TESTWORKLOAD_INTERVAL and CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY).
//
// Holding a command (tests that must act while an operation is in flight):
// with CLUSTERGUARD_TESTWORKLOAD_HOLD_DIR set, a command finding the file
// <dir>/<workload>.<command>.hold there writes <workload>.<command>.held and
// waits (up to two minutes) until the .hold file is removed, then runs.
//
// Files: <data>/records.log holds "seq=N node=NODE workload=NAME at=RFC3339Nano"
// lines; the node-local state directory holds pid, status.json (see Status),
// quiesced (the ack: the last flushed seq) and workload.log (run's output).
package testworkload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BinaryName is the program's name; status only trusts processes whose command
// line starts with it, so a recycled pid is not mistaken for the workload.
const BinaryName = "clusterguard-testworkload"

// File names in the data and state directories.
const (
	RecordsFile = "records.log"
	PIDFile     = "pid"
	StatusFile  = "status.json"
	AckFile     = "quiesced"
	LogFile     = "workload.log"
	lockFile    = "lock"
)

// Exit codes, following the LSB init-script convention the exec driver expects.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitNotRunning = 3
)

// Status is the content of <state>/status.json, rewritten atomically on every
// generated record, flush, quiesce and thaw. Generated > Flushed means records
// are pending in memory.
type Status struct {
	PID       int       `json:"pid"`
	Node      string    `json:"node"`
	Workload  string    `json:"workload"`
	Generated int64     `json:"generated"` // seq of the last record generated
	Flushed   int64     `json:"flushed"`   // seq of the last record written and fsynced to records.log
	Quiesced  bool      `json:"quiesced"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Record is one line of records.log.
type Record struct {
	Seq      int64
	Node     string
	Workload string
	At       time.Time
}

func (r Record) line() string {
	return fmt.Sprintf("seq=%d node=%s workload=%s at=%s\n", r.Seq, r.Node, r.Workload, r.At.UTC().Format(time.RFC3339Nano))
}

// ParseRecord parses one records.log line.
func ParseRecord(line string) (Record, error) {
	var r Record
	fields := strings.Fields(line)
	if len(fields) != 4 {
		return r, fmt.Errorf("record %q: want 4 fields seq= node= workload= at=", line)
	}
	for _, f := range fields {
		key, value, _ := strings.Cut(f, "=")
		var err error
		switch key {
		case "seq":
			r.Seq, err = strconv.ParseInt(value, 10, 64)
		case "node":
			r.Node = value
		case "workload":
			r.Workload = value
		case "at":
			r.At, err = time.Parse(time.RFC3339Nano, value)
		default:
			err = fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return r, fmt.Errorf("record %q: %w", line, err)
		}
	}
	return r, nil
}

// ReadRecords reads every record of <dataDir>/records.log; a missing file is no records.
func ReadRecords(dataDir string) ([]Record, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, RecordsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		r, err := ParseRecord(sc.Text())
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// ReadStatus reads <stateDir>/status.json.
func ReadStatus(stateDir string) (Status, error) {
	var s Status
	data, err := os.ReadFile(filepath.Join(stateDir, StatusFile))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
}

// ReadQuiesceAck returns the last flushed seq written in the quiesce ack, and
// whether the workload is quiesced at all.
func ReadQuiesceAck(stateDir string) (seq int64, quiesced bool, err error) {
	data, err := os.ReadFile(filepath.Join(stateDir, AckFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	seq, err = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, true, fmt.Errorf("quiesce ack %s: %w", filepath.Join(stateDir, AckFile), err)
	}
	return seq, true, nil
}

// settings are resolved from flags, then the environment, then defaults.
type settings struct {
	node, workload string
	dataDir        string
	stateDir       string
	interval       time.Duration
	flushEvery     int
	wait           time.Duration
	stdout, stderr io.Writer
}

const usageText = `usage: clusterguard-testworkload <run|start|stop|status|quiesce|thaw|pause|resume> [flags]

Flags override the CLUSTERGUARD_* environment set by the agent's exec driver.
`

// Main runs the program with args (without the program name) and returns its exit code.
func Main(args []string) int {
	return main(args, os.Stdout, os.Stderr)
}

func main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd := args[0]
	fset := flag.NewFlagSet(BinaryName+" "+cmd, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, usageText); fset.PrintDefaults() }
	s := settings{stdout: stdout, stderr: stderr}
	firstPath, _, _ := strings.Cut(os.Getenv("CLUSTERGUARD_PATHS"), ":")
	fset.StringVar(&s.node, "node", os.Getenv("CLUSTERGUARD_NODE"), "node name written into records (env CLUSTERGUARD_NODE)")
	fset.StringVar(&s.workload, "workload", os.Getenv("CLUSTERGUARD_WORKLOAD"), "workload name written into records (env CLUSTERGUARD_WORKLOAD)")
	fset.StringVar(&s.dataDir, "path", firstPath, "data directory on the shared volume (env: first of CLUSTERGUARD_PATHS)")
	fset.StringVar(&s.stateDir, "state-dir", os.Getenv("CLUSTERGUARD_STATE_DIR"), "node-local state directory (env CLUSTERGUARD_STATE_DIR)")
	fset.DurationVar(&s.interval, "interval", envDuration("CLUSTERGUARD_TESTWORKLOAD_INTERVAL", 50*time.Millisecond), "time between records (env CLUSTERGUARD_TESTWORKLOAD_INTERVAL)")
	fset.IntVar(&s.flushEvery, "flush-every", envInt("CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY", 50), "records buffered in memory between flushes (env CLUSTERGUARD_TESTWORKLOAD_FLUSH_EVERY)")
	fset.DurationVar(&s.wait, "wait", 10*time.Second, "how long start, stop, quiesce and thaw wait for the workload to react")
	if err := fset.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if s.stateDir == "" {
		fmt.Fprintln(stderr, cmd+": no state directory; set CLUSTERGUARD_STATE_DIR or pass --state-dir")
		return exitUsage
	}
	if s.interval <= 0 || s.flushEvery <= 0 {
		fmt.Fprintln(stderr, cmd+": --interval and --flush-every must be positive")
		return exitUsage
	}
	if err := os.MkdirAll(s.stateDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "%s: create state directory: %v\n", cmd, err)
		return exitFailed
	}
	if dir := os.Getenv(HoldDirEnv); dir != "" {
		holdIfAsked(dir, s.workload, cmd)
	}
	switch cmd {
	case "run":
		return s.run()
	case "start":
		return s.start()
	case "stop":
		return s.stop()
	case "status":
		return s.status()
	case "quiesce":
		return s.quiesce()
	case "thaw":
		return s.thaw()
	case "pause":
		return s.signal("pause", syscall.SIGSTOP)
	case "resume":
		return s.signal("resume", syscall.SIGCONT)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s", cmd, usageText)
		return exitUsage
	}
}

// HoldDirEnv names the directory of hold files (see the package comment).
const HoldDirEnv = "CLUSTERGUARD_TESTWORKLOAD_HOLD_DIR"

// HoldFiles returns the hold file a test creates to hold workload's command,
// and the file the held command writes while it waits.
func HoldFiles(dir, workload, cmd string) (hold, held string) {
	base := filepath.Join(dir, workload+"."+cmd)
	return base + ".hold", base + ".held"
}

// holdIfAsked waits while a test holds this command.
func holdIfAsked(dir, workload, cmd string) {
	hold, held := HoldFiles(dir, workload, cmd)
	if _, err := os.Stat(hold); err != nil {
		return
	}
	_ = os.WriteFile(held, []byte(strconv.Itoa(os.Getpid())), 0o644)
	waitFor(2*time.Minute, func() bool {
		_, err := os.Stat(hold)
		return errors.Is(err, fs.ErrNotExist)
	})
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

// writeFileAtomic replaces path with data so readers see the old or the new
// content, never a partial one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
