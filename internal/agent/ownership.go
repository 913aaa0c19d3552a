package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/agent/api"
)

// OwnersDir, relative to the shared volume, holds one owner record per
// workload: the per-workload ownership lease (see "Ownership lease" in the
// package documentation).
var OwnersDir = filepath.Join(MetadataDir, "owners")

// Default ownership lease timing (config block ownership). A holder renews
// every DefaultRenewInterval; a record not renewed for DefaultExpiry is
// expired; readers add DefaultClockSkewMargin before they believe it.
const (
	DefaultRenewInterval   = 2 * time.Second
	DefaultExpiry          = 10 * time.Second
	DefaultClockSkewMargin = 2 * time.Second
)

// OwnershipConfig is the timing of the ownership lease.
type OwnershipConfig struct {
	RenewInterval   time.Duration
	Expiry          time.Duration
	ClockSkewMargin time.Duration
	// StopDeadline bounds the stop of a workload whose lease this node
	// lost; zero means the default derived from the others (see
	// stopDeadline in ownership_fence.go).
	StopDeadline time.Duration
}

// DefaultOwnershipConfig returns the default timing.
func DefaultOwnershipConfig() OwnershipConfig {
	return OwnershipConfig{RenewInterval: DefaultRenewInterval, Expiry: DefaultExpiry, ClockSkewMargin: DefaultClockSkewMargin}
}

// takeoverDelay is how long an acquirer waits after claiming a record
// another node let expire: the expiry and the margin once more, so a holder
// that was only slow either renews over our claim (and we lose) or has
// noticed it cannot renew and stopped its workload.
func (c OwnershipConfig) takeoverDelay() time.Duration { return c.Expiry + c.ClockSkewMargin }

// OwnerRecord is the content of .clusterguard/owners/<workload>.json.
type OwnerRecord struct {
	Workload string `json:"workload"`
	Node     string `json:"node"`
	// Generation grows by one with every claim, so a holder that was taken
	// over sees a newer generation than its own.
	Generation uint64 `json:"generation"`
	// Claim is random per claim: two nodes that wrote the same generation
	// in a race still tell their claims apart.
	Claim           string    `json:"claim"`
	HeartbeatAt     time.Time `json:"heartbeat_at"`
	RenewIntervalMS int64     `json:"renew_interval_ms"`
	ExpiryMS        int64     `json:"expiry_ms"`
	Released        bool      `json:"released"`
}

// ExpiresAt is when the record stops protecting its holder, by the holder's clock.
func (r OwnerRecord) ExpiresAt() time.Time {
	return r.HeartbeatAt.Add(time.Duration(r.ExpiryMS) * time.Millisecond)
}

// LiveAt reports whether the lease still binds other nodes at now: not
// released and not expired even if now's clock runs skew ahead of the holder's.
func (r OwnerRecord) LiveAt(now time.Time, skew time.Duration) bool {
	return r.Node != "" && !r.Released && now.Before(r.ExpiresAt().Add(skew))
}

// View is the record as the API shows it.
func (r OwnerRecord) View(heldHere bool) *api.WorkloadOwner {
	return &api.WorkloadOwner{Node: r.Node, Generation: r.Generation, HeartbeatAt: r.HeartbeatAt.UTC(),
		ExpiresAt: r.ExpiresAt().UTC(), Released: r.Released, HeldHere: heldHere}
}

// LeaseHeldError says another node holds a workload's ownership lease.
type LeaseHeldError struct {
	Workload string
	Record   OwnerRecord
	Race     bool // lost a race of two claims rather than finding a live lease
}

func (e *LeaseHeldError) Error() string {
	how := "holds and renews"
	if e.Race {
		how = "claimed it at the same time and won"
	}
	return fmt.Sprintf("node %s %s the ownership lease of workload %s (generation %d, last renewed %s, expires %s unless renewed); stop it there first, or wait until that node's lease expires if it is down",
		e.Record.Node, how, e.Workload, e.Record.Generation, e.Record.HeartbeatAt.UTC().Format(time.RFC3339Nano), e.Record.ExpiresAt().UTC().Format(time.RFC3339Nano))
}

// leaseClock is the time source of the lease, injected so tests run fast.
// Now is wall time, written into records for other nodes to read; Mono is
// monotonic elapsed time, the only clock a holder uses to judge its own
// lease (a wall clock stepped by NTP must not stretch it).
type leaseClock interface {
	Now() time.Time
	Mono() time.Duration
	After(d time.Duration) <-chan time.Time
}

type realClock struct{ now func() time.Time }

// monoOrigin is the host's CLOCK_BOOTTIME at start: Mono never follows
// wall-clock steps, and unlike Go's monotonic clock (CLOCK_MONOTONIC) it
// keeps counting while the host is suspended, during which the lease runs
// out too. The watchdog's deadlines use the same clock.
var monoOrigin = bootNow()

func (c realClock) Now() time.Time                       { return c.now() }
func (realClock) Mono() time.Duration                    { return time.Duration(bootNow() - monoOrigin) }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Owners keeps this node's ownership leases: it acquires them like a delta
// lease, renews every held one each interval and releases them on stop.
type Owners struct {
	node   string
	volume string
	// stateDir (node-local) keeps the last claim this node confirmed per
	// workload, so a restarted agent knows whether a newer lease elsewhere
	// superseded its own.
	stateDir string
	cfg      OwnershipConfig
	clock    leaseClock
	logger   *slog.Logger
	// lost is called (in its own goroutine) when a held lease was taken
	// over or could not be renewed for longer than the expiry.
	lost func(workload, reason string)
	// lostWG tracks the lost callbacks running, so a stopping server can
	// wait for them (StopBackground).
	lostWG sync.WaitGroup

	mu   sync.Mutex // serialises this node's reads and writes of records
	held map[string]*heldLease
	busy map[string]bool // workloads with an adoption under way
	// inactiveSeen is when a held workload was first seen inactive since
	// it was last seen otherwise (see confirmInactive).
	inactiveSeen map[string]time.Time
	// running is set while Run renews: only then are workloads adopted.
	running atomic.Bool
	// vmu guards validFrom and fenced apart from o.mu, so the self-fence
	// timer decides even while a renewal's write hangs with o.mu held.
	vmu sync.Mutex
	// validFrom is, per held lease not yet reported lost, the monotonic
	// time its last successful renewal began.
	validFrom map[string]time.Duration
	// fenced are leases the self-fence timer reported lost whose held
	// entry is not yet dropped (dropFencedLocked).
	fenced map[string]bool
	// wd is the watchdog process's feed, once RunOwnership started it.
	wd atomic.Pointer[watchdogState]
	// watchdogBin, when set, is the binary RunOwnership starts the
	// watchdog from (EnableWatchdog).
	watchdogBin string
	// beforeClaimWrite, for tests, runs between Acquire's read of the
	// record and the write of its claim (a stalled agent).
	beforeClaimWrite func()

	// renewals counts renewals for the agent's metrics (metrics.go).
	renewals leaseCounters
}

type heldLease struct {
	rec         OwnerRecord
	lastRenewed time.Time // wall time of the last renewal, for messages only
	// renewedMono is the monotonic time at which the last successful
	// renewal began (before its read and write): the holder's lease is
	// valid for expiry from then, whatever the wall clock does.
	renewedMono time.Duration
}

// NewOwners returns the lease keeper of node on volume.
func NewOwners(node, volume, stateDir string, cfg OwnershipConfig, clock leaseClock, logger *slog.Logger, lost func(workload, reason string)) *Owners {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Owners{node: node, volume: volume, stateDir: stateDir, cfg: cfg, clock: clock, logger: logger, lost: lost, held: map[string]*heldLease{}, busy: map[string]bool{}}
}

// OwnerRecordPath is the owner record of workload on volume.
func OwnerRecordPath(volume, workload string) string {
	return filepath.Join(volume, OwnersDir, workload+".json")
}

// ReadOwnerRecord reads workload's owner record; ok is false when there is none.
func ReadOwnerRecord(volume, workload string) (rec OwnerRecord, ok bool, err error) {
	path := OwnerRecordPath(volume, workload)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return OwnerRecord{}, false, nil
	}
	if err != nil {
		return OwnerRecord{}, false, fmt.Errorf("read owner record %s: %w; is the shared volume mounted?", path, err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return OwnerRecord{}, false, fmt.Errorf("owner record %s is not valid JSON: %w; records are replaced atomically, so something else wrote it: check that no node is running the workload, then remove the file", path, err)
	}
	return rec, true, nil
}

func (o *Owners) write(rec OwnerRecord) error {
	dir := filepath.Join(o.volume, OwnersDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := OwnerRecordPath(o.volume, rec.Workload)
	if err := writeFileAtomic(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write owner record %s: %w", path, err)
	}
	return nil
}

func newClaimID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Holds reports whether this node holds workload's lease (and renews it).
func (o *Owners) Holds(workload string) bool {
	if o.isFenced(workload) {
		return false // decided without o.mu, which a hung write may hold
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.held[workload]
	return ok
}

// Acquire takes workload's lease: read the record; refuse if another node
// holds a live lease; write our claim; wait; re-read; own it only if the
// record is still our claim. A lease this node already holds is renewed.
func (o *Owners) Acquire(ctx context.Context, workload string) (OwnerRecord, error) {
	o.mu.Lock()
	o.dropFencedLocked()
	if h, ok := o.held[workload]; ok {
		err := o.renewLocked(workload, h)
		rec := h.rec
		o.mu.Unlock()
		if err != nil {
			return OwnerRecord{}, err
		}
		return rec, nil
	}
	readAt := o.clock.Mono()
	rec, exists, err := ReadOwnerRecord(o.volume, workload)
	if err != nil {
		o.mu.Unlock()
		return OwnerRecord{}, err
	}
	now := o.clock.Now()
	if exists && rec.Node != o.node && rec.LiveAt(now, o.cfg.ClockSkewMargin) {
		o.mu.Unlock()
		return OwnerRecord{}, &LeaseHeldError{Workload: workload, Record: rec}
	}
	// The waits use the longer of our timing and the one the record's
	// writer declared: a holder or rival with slower renewals than ours
	// must get its full interval too.
	delay := o.cfg.freeDelayWith(rec)
	if exists && rec.Node != o.node && !rec.Released {
		delay = o.cfg.takeoverDelayWith(rec)
		o.logger.Warn("taking over an expired ownership lease", "workload", workload, "holder", rec.Node,
			"generation", rec.Generation, "last_renewed", rec.HeartbeatAt, "wait", delay)
	}
	claim := OwnerRecord{Workload: workload, Node: o.node, Generation: rec.Generation + 1, Claim: newClaimID(),
		HeartbeatAt: now.UTC(), RenewIntervalMS: o.cfg.RenewInterval.Milliseconds(), ExpiryMS: o.cfg.Expiry.Milliseconds()}
	if o.beforeClaimWrite != nil {
		o.beforeClaimWrite()
	}
	err = o.write(claim)
	if err == nil {
		delay, err = o.checkClaimGap(workload, rec, claim, o.clock.Mono()-readAt, delay)
	}
	o.mu.Unlock()
	if err != nil {
		return OwnerRecord{}, fmt.Errorf("claim the ownership lease of %s: %w", workload, err)
	}

	select {
	case <-ctx.Done():
		o.releaseClaim(workload, claim)
		return OwnerRecord{}, fmt.Errorf("claim the ownership lease of %s: %w", workload, ctx.Err())
	case <-o.clock.After(delay):
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	got, exists, err := ReadOwnerRecord(o.volume, workload)
	if err != nil {
		return OwnerRecord{}, fmt.Errorf("confirm the ownership lease of %s: %w", workload, err)
	}
	if !exists || got.Claim != claim.Claim {
		return OwnerRecord{}, &LeaseHeldError{Workload: workload, Record: got, Race: true}
	}
	h := &heldLease{rec: claim, lastRenewed: claim.HeartbeatAt}
	if err := o.renewLocked(workload, h); err != nil {
		return OwnerRecord{}, err
	}
	o.held[workload] = h
	o.setValid(workload, h.renewedMono)
	delete(o.inactiveSeen, workload)
	if err := o.rememberClaim(h.rec); err != nil {
		o.logger.Warn("cannot note the claim in the state directory", "workload", workload, "error", err)
	}
	o.logger.Info("ownership lease acquired", "workload", workload, "generation", claim.Generation)
	return h.rec, nil
}

// releaseClaim gives back a claim an acquirer abandoned, if it is still ours.
func (o *Owners) releaseClaim(workload string, claim OwnerRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if got, ok, err := ReadOwnerRecord(o.volume, workload); err == nil && ok && got.Claim == claim.Claim {
		claim.Released, claim.HeartbeatAt = true, o.clock.Now().UTC()
		_ = o.write(claim)
	}
}

// renewLocked re-reads the record and, if it is still our claim, writes a
// new heartbeat. o.mu is held.
func (o *Owners) renewLocked(workload string, h *heldLease) error {
	began := o.clock.Mono()
	got, exists, err := ReadOwnerRecord(o.volume, workload)
	if err == nil && (!exists || got.Claim != h.rec.Claim) {
		return &leaseLostError{workload: workload, rec: got, exists: exists}
	}
	if err == nil {
		next := h.rec
		next.HeartbeatAt = o.clock.Now().UTC()
		if err = o.write(next); err == nil {
			h.rec, h.lastRenewed, h.renewedMono = next, next.HeartbeatAt, began
			o.setValid(workload, began)
			o.feedWatchdog(workload, began)
			return nil
		}
	}
	return fmt.Errorf("renew the ownership lease of %s: %w", workload, err)
}

type leaseLostError struct {
	workload string
	rec      OwnerRecord
	exists   bool
}

func (e *leaseLostError) Error() string {
	if !e.exists {
		return fmt.Sprintf("the owner record of %s was removed while this node held it", e.workload)
	}
	return fmt.Sprintf("node %s took over the ownership lease of %s (generation %d)", e.rec.Node, e.workload, e.rec.Generation)
}

// RenewAll renews every held lease once. A lease taken over, or not renewed
// for longer than the expiry, is dropped and reported to lost: the caller
// stops the workload here.
func (o *Owners) RenewAll() {
	o.mu.Lock()
	o.dropFencedLocked()
	var lost []struct{ workload, reason string }
	var retry []func() // logged after the unlock: a blocked log must not hold the leases
	for name, h := range o.held {
		err := o.renewLocked(name, h)
		o.renewals.observe(err)
		if err == nil {
			continue
		}
		var taken *leaseLostError
		switch {
		case errors.As(err, &taken):
			if o.clearValid(name) {
				lost = append(lost, struct{ workload, reason string }{name, taken.Error()})
			}
			delete(o.held, name)
		case o.clock.Mono()-h.renewedMono > o.cfg.fenceAfter():
			if o.clearValid(name) {
				lost = append(lost, struct{ workload, reason string }{name, o.notRenewedReason(o.clock.Mono()-h.renewedMono, h.lastRenewed, err)})
			}
			delete(o.held, name)
		default:
			name, last := name, h.lastRenewed
			retry = append(retry, func() {
				o.logger.Warn("ownership lease renewal failed; retrying", "workload", name, "last_renewed", last, "error", err)
			})
		}
	}
	o.mu.Unlock()
	for _, log := range retry {
		log()
	}
	for _, l := range lost {
		o.logger.Error("ownership lease lost: stopping the workload on this node", "workload", l.workload, "reason", l.reason)
		if o.lost != nil {
			o.goLost(l.workload, l.reason)
		}
	}
}

// Run renews the held leases every renewal interval until ctx ends. Held
// leases are left as they are: the workloads keep running, and the leases
// expire unless a restarted agent adopts them.
func (o *Owners) Run(ctx context.Context) {
	o.running.Store(true)
	defer o.running.Store(false)
	fenceDone := make(chan struct{})
	go func() { defer close(fenceDone); o.fenceLoop(ctx) }()
	defer func() { <-fenceDone }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.clock.After(o.cfg.RenewInterval):
		}
		o.RenewAll()
	}
}

// Release gives up workload's lease: the record, if it is this node's, is
// marked released so another node can claim it without waiting for expiry.
func (o *Owners) Release(workload string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropFencedLocked()
	o.clearValid(workload)
	o.disarmWatchdog(workload)
	delete(o.held, workload)
	delete(o.inactiveSeen, workload)
	o.ForgetClaim(workload)
	rec, exists, err := ReadOwnerRecord(o.volume, workload)
	if err != nil {
		return err
	}
	if !exists || rec.Node != o.node || rec.Released {
		return nil
	}
	rec.Released, rec.HeartbeatAt = true, o.clock.Now().UTC()
	if err := o.write(rec); err != nil {
		return fmt.Errorf("release the ownership lease of %s: %w", workload, err)
	}
	o.logger.Info("ownership lease released", "workload", workload, "generation", rec.Generation)
	return nil
}

// Verify checks that this node holds workload's lease and that the record
// on the volume is still its claim.
func (o *Owners) Verify(workload string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropFencedLocked()
	h, ok := o.held[workload]
	got, exists, err := ReadOwnerRecord(o.volume, workload)
	switch {
	case err != nil:
		return err
	case !ok && exists && got.Node != o.node && !got.Released:
		// Lost before this check (a renewal saw the takeover first): name
		// the node that holds it now.
		return &leaseLostError{workload: workload, rec: got, exists: exists}
	case !ok:
		return fmt.Errorf("this node does not hold the ownership lease of %s", workload)
	case !exists || got.Claim != h.rec.Claim:
		return &leaseLostError{workload: workload, rec: got, exists: exists}
	}
	return nil
}

func (o *Owners) begin(workload string) bool {
	if !o.running.Load() {
		return false // no renewals: nothing adopted would be kept
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.busy[workload] {
		return false
	}
	o.busy[workload] = true
	return true
}

func (o *Owners) end(workload string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.busy, workload)
}

func (o *Owners) localClaimPath(workload string) string {
	return filepath.Join(o.stateDir, "owners", workload+".json")
}

// rememberClaim notes a confirmed claim in the node-local state directory.
func (o *Owners) rememberClaim(rec OwnerRecord) error {
	if o.stateDir == "" {
		return nil
	}
	path := o.localClaimPath(rec.Workload)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

// LastOwnClaim is the last claim this node confirmed for workload, if any.
func (o *Owners) LastOwnClaim(workload string) (OwnerRecord, bool) {
	if o.stateDir == "" {
		return OwnerRecord{}, false
	}
	data, err := os.ReadFile(o.localClaimPath(workload))
	if err != nil {
		return OwnerRecord{}, false
	}
	var rec OwnerRecord
	if json.Unmarshal(data, &rec) != nil {
		return OwnerRecord{}, false
	}
	return rec, true
}

// ForgetClaim drops the node-local note of workload's claim once the
// workload no longer runs here under it (stopped, or released): a copy
// found here later was not started under this node's lease.
func (o *Owners) ForgetClaim(workload string) {
	if o.stateDir != "" {
		_ = os.Remove(o.localClaimPath(workload))
	}
}

// goLost runs the lost callback in the background, tracked by lostWG.
func (o *Owners) goLost(workload, reason string) {
	o.lostWG.Add(1)
	go func() {
		defer o.lostWG.Done()
		o.lost(workload, reason)
	}()
}
