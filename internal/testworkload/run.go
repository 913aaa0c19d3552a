package testworkload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// workload is the state of one run.
type workload struct {
	s         settings
	records   string // path of records.log
	buf       bytes.Buffer
	pending   int // records in buf
	generated int64
	flushed   int64
	quiesced  bool
}

func (s settings) run() int {
	// Signals first: SIGUSR1's default action would kill us before we listen.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)

	if s.dataDir == "" {
		fmt.Fprintln(s.stderr, "run: no data directory; set CLUSTERGUARD_PATHS or pass --path")
		return exitUsage
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		fmt.Fprintf(s.stderr, "run: create data directory: %v\n", err)
		return exitFailed
	}
	w := &workload{s: s, records: filepath.Join(s.dataDir, RecordsFile)}
	last, err := lastSeq(w.records)
	if err != nil {
		fmt.Fprintf(s.stderr, "run: %v\n", err)
		return exitFailed
	}
	// Continue the sequence where the previous instance (maybe on another node) stopped.
	w.generated, w.flushed = last, last
	// An ack left by a previous instance would tell quiesce we are quiesced.
	if err := os.Remove(filepath.Join(s.stateDir, AckFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(s.stderr, "run: remove stale quiesce ack: %v\n", err)
		return exitFailed
	}
	if err := w.writeStatus(); err != nil {
		fmt.Fprintf(s.stderr, "run: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(s.stdout, "run: pid %d node %s workload %s writing %s from seq %d\n", os.Getpid(), s.node, s.workload, w.records, last+1)

	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	for {
		var err error
		select {
		case <-ticker.C:
			if !w.quiesced {
				err = w.generate()
			}
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				err = w.quiesce()
			case syscall.SIGUSR2:
				err = w.thaw()
			default:
				if err := w.flush(); err != nil {
					fmt.Fprintf(s.stderr, "run: flush on %v: %v\n", sig, err)
					return exitFailed
				}
				fmt.Fprintf(s.stdout, "run: %v: flushed up to seq %d, exiting\n", sig, w.flushed)
				return exitOK
			}
		}
		if err != nil {
			fmt.Fprintf(s.stderr, "run: %v\n", err)
			return exitFailed
		}
	}
}

func (w *workload) generate() error {
	w.generated++
	rec := Record{Seq: w.generated, Node: w.s.node, Workload: w.s.workload, At: time.Now()}
	w.buf.WriteString(rec.line())
	w.pending++
	if w.pending >= w.s.flushEvery {
		return w.flush()
	}
	return w.writeStatus()
}

// flush appends the buffered records to records.log and fsyncs it.
func (w *workload) flush() error {
	if w.pending > 0 {
		f, err := os.OpenFile(w.records, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		_, werr := f.Write(w.buf.Bytes())
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			return fmt.Errorf("flush %d records to %s: %w", w.pending, w.records, err)
		}
		w.buf.Reset()
		w.pending = 0
		w.flushed = w.generated
	}
	return w.writeStatus()
}

func (w *workload) quiesce() error {
	if err := w.flush(); err != nil {
		return err
	}
	w.quiesced = true
	if err := w.writeStatus(); err != nil {
		return err
	}
	// The ack comes last: whoever waits for it may copy records.log right away.
	return writeFileAtomic(filepath.Join(w.s.stateDir, AckFile), fmt.Appendf(nil, "%d\n", w.flushed))
}

func (w *workload) thaw() error {
	w.quiesced = false
	if err := w.writeStatus(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(w.s.stateDir, AckFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

func (w *workload) writeStatus() error {
	data, err := json.Marshal(Status{
		PID: os.Getpid(), Node: w.s.node, Workload: w.s.workload,
		Generated: w.generated, Flushed: w.flushed, Quiesced: w.quiesced, UpdatedAt: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(w.s.stateDir, StatusFile), data); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// lastSeq returns the seq of the last complete record in records.log, reading
// only its tail; 0 when there is none.
func lastSeq(path string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const tail = 64 << 10
	offset := max(info.Size()-tail, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, offset, info.Size()-offset))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	// Only complete lines count: a crash may have cut the last one short.
	lines := bytes.Split(data, []byte("\n"))
	for i := len(lines) - 2; i >= 0; i-- {
		if offset > 0 && i == 0 {
			break // possibly cut by the tail window
		}
		if r, err := ParseRecord(string(lines[i])); err == nil {
			return r.Seq, nil
		}
	}
	return 0, nil
}
