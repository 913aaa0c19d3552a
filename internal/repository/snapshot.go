package repository

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"
)

// Consistency says how the data was captured.
type Consistency string

const (
	// ConsistencyApplication: the workload flushed and quiesced first.
	ConsistencyApplication Consistency = "application"
	// ConsistencyCrash: as if the power had been cut at the capture moment.
	ConsistencyCrash Consistency = "crash"
)

// SnapshotMeta is what the caller says about a backup.
type SnapshotMeta struct {
	Workload    string            `json:"workload,omitempty"`
	Node        string            `json:"node,omitempty"` // informational: restore is not tied to it
	Cluster     string            `json:"cluster,omitempty"`
	Group       string            `json:"group,omitempty"` // protection group
	RunID       string            `json:"run_id,omitempty"`
	Consistency Consistency       `json:"consistency,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Time is the capture time; zero means the repository clock's now.
	Time time.Time `json:"time"`
}

// SnapshotSummary records what a backup did.
type SnapshotSummary struct {
	Files      int64 `json:"files"`
	Dirs       int64 `json:"dirs"`
	Bytes      int64 `json:"bytes"`       // logical size of all files
	BytesRead  int64 `json:"bytes_read"`  // read from disk (unchanged files are skipped)
	BytesAdded int64 `json:"bytes_added"` // stored in new packs
	DurationMS int64 `json:"duration_ms"`
}

// Snapshot is a recovery point: a tree of files plus metadata.
type Snapshot struct {
	ID string `json:"-"` // hex name of the snapshot object
	SnapshotMeta
	Parent   string          `json:"parent,omitempty"`
	Root     string          `json:"root"`            // directory that was backed up
	Paths    []string        `json:"paths,omitempty"` // selected paths under Root; empty means all of it
	Tree     ID              `json:"tree"`
	Hostname string          `json:"hostname,omitempty"` // host that wrote the snapshot
	Summary  SnapshotSummary `json:"summary"`
	Version  int             `json:"version"`
}

// ShortID is the first 8 hex digits of the id.
func (s Snapshot) ShortID() string { return short(s.ID) }

// decodeSnapshot parses a snapshot manifest plaintext.
func decodeSnapshot(b []byte) (Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("snapshot manifest: %w", err)
	}
	if s.Version != FormatVersion {
		return s, fmt.Errorf("snapshot manifest: unsupported version %d", s.Version)
	}
	if s.Tree.IsZero() {
		return s, errors.New("snapshot manifest: no root tree")
	}
	switch s.Consistency {
	case "", ConsistencyApplication, ConsistencyCrash:
	default:
		return s, fmt.Errorf("snapshot manifest: unknown consistency %q", s.Consistency)
	}
	return s, nil
}

func (r *Repository) saveSnapshot(ctx context.Context, s *Snapshot) error {
	s.Version = FormatVersion
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	sealed, err := r.crypt.seal(nil, raw, adSnapshot)
	if err != nil {
		return err
	}
	sum := blake3.Sum256(sealed)
	s.ID = hex.EncodeToString(sum[:])
	if err := r.be.Save(ctx, Handle{Type: SnapshotFile, Name: s.ID}, sealed); err != nil {
		return fmt.Errorf("save snapshot %s: %w", s.ShortID(), err)
	}
	r.snaps.Store(s.ID, *s)
	return nil
}

func (r *Repository) loadSnapshot(ctx context.Context, id string) (Snapshot, error) {
	if v, ok := r.snaps.Load(id); ok {
		return v.(Snapshot), nil
	}
	raw, err := r.be.Load(ctx, Handle{Type: SnapshotFile, Name: id}, 0, 0)
	if err != nil {
		return Snapshot{}, &objectError{SnapshotFile, id, fmt.Errorf("load: %w", err)}
	}
	// The id is the hash of the stored bytes: re-check it, so a manifest
	// copied or renamed under another snapshot's id (it still decrypts, the
	// id is not in its associated data) is refused, not returned as that
	// snapshot.
	if sum := blake3.Sum256(raw); hex.EncodeToString(sum[:]) != id {
		return Snapshot{}, &objectError{SnapshotFile, id, fmt.Errorf("%w: content does not match the snapshot id (hash %s): the file was replaced or renamed; run verify, and forget or restore this snapshot from a copy", ErrDamaged, short(hex.EncodeToString(sum[:])))}
	}
	plain, err := r.crypt.open(nil, raw, adSnapshot)
	if err != nil {
		return Snapshot{}, &objectError{SnapshotFile, id, err}
	}
	s, err := decodeSnapshot(plain)
	if err != nil {
		return Snapshot{}, &objectError{SnapshotFile, id, err}
	}
	s.ID = id
	r.snaps.Store(id, s)
	return s, nil
}

// SnapshotFilter selects snapshots; zero fields match everything.
type SnapshotFilter struct {
	Workload string
	Group    string
	Cluster  string
	Node     string
	RunID    string
	Tags     []string  // all must be present
	From, To time.Time // inclusive bounds on the capture time
}

// Match reports whether s passes the filter.
func (f SnapshotFilter) Match(s Snapshot) bool {
	if (f.Workload != "" && s.Workload != f.Workload) || (f.Group != "" && s.Group != f.Group) ||
		(f.Cluster != "" && s.Cluster != f.Cluster) || (f.Node != "" && s.Node != f.Node) ||
		(f.RunID != "" && s.RunID != f.RunID) {
		return false
	}
	for _, t := range f.Tags {
		if !slices.Contains(s.Tags, t) {
			return false
		}
	}
	if !f.From.IsZero() && s.Time.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && s.Time.After(f.To) {
		return false
	}
	return true
}

// allSnapshots loads every snapshot; unreadable ones are returned as
// problems rather than failing the listing.
func (r *Repository) allSnapshots(ctx context.Context) ([]Snapshot, []error, error) {
	names, err := r.listNames(ctx, SnapshotFile)
	if err != nil {
		return nil, nil, err
	}
	var (
		mu       sync.Mutex
		out      []Snapshot
		problems []error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency * 4)
	for n := range names {
		g.Go(func() error {
			s, err := r.loadSnapshot(gctx, n)
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrNotExist) {
				return nil // forgotten meanwhile
			}
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				problems = append(problems, err)
				return nil
			}
			out = append(out, s)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sortSnapshots(out)
	return out, problems, nil
}

// sortSnapshots orders newest first (ties by id, for determinism).
func sortSnapshots(s []Snapshot) {
	sort.Slice(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.After(s[j].Time)
		}
		return s[i].ID < s[j].ID
	})
}

// Snapshots lists the snapshots that match f, newest first. Snapshots that
// cannot be read are left out (Verify reports them).
func (r *Repository) Snapshots(ctx context.Context, f SnapshotFilter) ([]Snapshot, error) {
	all, _, err := r.allSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, s := range all {
		if f.Match(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Snapshot finds one snapshot by full id, unique id prefix, or "latest".
func (r *Repository) Snapshot(ctx context.Context, idOrPrefix string) (Snapshot, error) {
	if idOrPrefix == "latest" {
		all, err := r.Snapshots(ctx, SnapshotFilter{})
		if err != nil {
			return Snapshot{}, err
		}
		if len(all) == 0 {
			return Snapshot{}, fmt.Errorf("latest snapshot in %s: %w (the repository has none)", r.be.Location(), ErrSnapshotNotFound)
		}
		return all[0], nil
	}
	if idOrPrefix == "" {
		return Snapshot{}, fmt.Errorf("snapshot id is empty: %w", ErrSnapshotNotFound)
	}
	if len(idOrPrefix) == 64 {
		s, err := r.loadSnapshot(ctx, idOrPrefix)
		if errors.Is(err, ErrNotExist) {
			return s, fmt.Errorf("snapshot %s in %s: %w", short(idOrPrefix), r.be.Location(), ErrSnapshotNotFound)
		}
		return s, err
	}
	names, err := r.listNames(ctx, SnapshotFile)
	if err != nil {
		return Snapshot{}, err
	}
	var match []string
	for n := range names {
		if strings.HasPrefix(n, idOrPrefix) {
			match = append(match, n)
		}
	}
	switch len(match) {
	case 0:
		return Snapshot{}, fmt.Errorf("snapshot %q in %s: %w", idOrPrefix, r.be.Location(), ErrSnapshotNotFound)
	case 1:
		return r.loadSnapshot(ctx, match[0])
	}
	return Snapshot{}, fmt.Errorf("snapshot prefix %q is ambiguous: it matches %d snapshots; give more digits", idOrPrefix, len(match))
}
