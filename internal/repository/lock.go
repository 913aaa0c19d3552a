package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// lockRecord is the content of a lock object (sealed with adLock).
type lockRecord struct {
	Exclusive bool      `json:"exclusive"`
	Operation string    `json:"operation"`
	Hostname  string    `json:"hostname,omitempty"`
	PID       int       `json:"pid"`
	Time      time.Time `json:"time"` // created or last refreshed
	// Who exactly holds it, so a process on the same host can tell the
	// holder died (see holderDead). Absent in locks of older releases.
	BootID   string `json:"boot_id,omitempty"`
	PIDNS    string `json:"pid_ns,omitempty"`
	PIDStart uint64 `json:"pid_start,omitempty"`
}

// LockedError says who holds the lock that blocked an operation.
// errors.Is(err, ErrLocked) holds.
type LockedError struct {
	Location  string
	Operation string // the blocked operation
	Holder    string // operation holding the conflicting lock
	Exclusive bool
	Hostname  string
	PID       int
	Since     time.Time
	StaleAt   time.Time
}

func (e *LockedError) Error() string {
	kind := "shared"
	if e.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s on %s: repository is locked (%s lock held by %s on host %q pid %d, last refreshed %s); retry later: if that process is gone the lock expires at %s (on that host, 'engine repo unlock' removes it at once)",
		e.Operation, e.Location, kind, e.Holder, e.Hostname, e.PID, e.Since.UTC().Format(time.RFC3339), e.StaleAt.UTC().Format(time.RFC3339))
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// repoLock is a held lock; release it with unlock.
type repoLock struct {
	r    *Repository
	name string
	rec  lockRecord
	stop chan struct{}
	done chan struct{}
}

// lock takes a shared (backup, forget, restore, verify) or exclusive
// (prune, rebuild-index) lock. It writes its own lock object first and then
// checks for conflicts, so two processes racing for conflicting locks both
// see each other and both back off (then retry if LockWait allows).
func (r *Repository) lock(ctx context.Context, exclusive bool, op string) (*repoLock, error) {
	deadline := time.Now().Add(r.opts.LockWait)
	backoff := 50 * time.Millisecond
	for {
		l, err := r.tryLock(ctx, exclusive, op)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrLocked) || !time.Now().Add(backoff).Before(deadline) {
			return nil, err
		}
		// Jitter keeps two contenders from retrying in lockstep.
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff))) //nolint:gosec // G404: timing jitter, not a secret
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (r *Repository) tryLock(ctx context.Context, exclusive bool, op string) (*repoLock, error) {
	if err := r.checkLocks(ctx, exclusive, op, ""); err != nil {
		return nil, err
	}
	id, err := r.randomID()
	if err != nil {
		return nil, err
	}
	self := selfIdentity()
	l := &repoLock{r: r, name: id.String(), rec: lockRecord{
		Exclusive: exclusive, Operation: op, Hostname: r.opts.Hostname, PID: os.Getpid(), Time: r.opts.Now().UTC(),
		BootID: self.BootID, PIDNS: self.PIDNS, PIDStart: self.PIDStart,
	}}
	if err := l.save(ctx); err != nil {
		return nil, err
	}
	if err := r.checkLocks(ctx, exclusive, op, l.name); err != nil {
		_ = r.be.Remove(context.WithoutCancel(ctx), Handle{Type: LockFile, Name: l.name})
		return nil, err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	// The refresh outlives this call's context on purpose: it runs until
	// unlock, which every caller defers.
	go l.refresh() //nolint:gosec // G118: see above
	return l, nil
}

func (l *repoLock) save(ctx context.Context) error {
	raw, err := json.Marshal(l.rec)
	if err != nil {
		return err
	}
	sealed, err := l.r.crypt.seal(nil, raw, adLock)
	if err != nil {
		return err
	}
	if err := l.r.be.Save(ctx, Handle{Type: LockFile, Name: l.name}, sealed); err != nil {
		return fmt.Errorf("%s: save lock in %s: %w", l.rec.Operation, l.r.be.Location(), err)
	}
	return nil
}

// refresh rewrites the lock's time periodically so others do not consider
// it stale while the operation runs (see lockRefreshDivisor for the timing).
func (l *repoLock) refresh() {
	defer close(l.done)
	t := time.NewTicker(l.r.opts.StaleLockAge / lockRefreshDivisor)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.rec.Time = l.r.opts.Now().UTC()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_ = l.save(ctx) // a missed refresh is retried next tick
			cancel()
		}
	}
}

// unlock removes the lock (even if ctx is cancelled: a crashed operation
// must not leave its lock behind when it can help it).
func (l *repoLock) unlock(ctx context.Context) {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = l.r.be.Remove(ctx, Handle{Type: LockFile, Name: l.name})
}

// checkLocks returns a *LockedError if a live lock conflicts with the one
// wanted; stale locks (not refreshed for StaleLockAge, or held by a process
// of this host that is gone) are removed on the way.
func (r *Repository) checkLocks(ctx context.Context, exclusive bool, op, own string) error {
	names, err := r.listNames(ctx, LockFile)
	if err != nil {
		return err
	}
	now := r.opts.Now()
	for n := range names {
		if n == own {
			continue
		}
		rec, err := r.loadLock(ctx, n)
		if errors.Is(err, ErrNotExist) {
			continue
		}
		if err != nil {
			continue // unreadable lock objects are garbage, not holders
		}
		if r.lockStale(rec, now) {
			_ = r.be.Remove(ctx, Handle{Type: LockFile, Name: n})
			continue
		}
		if rec.Exclusive || exclusive {
			return &LockedError{
				Location: r.be.Location(), Operation: op, Holder: rec.Operation, Exclusive: rec.Exclusive,
				Hostname: rec.Hostname, PID: rec.PID, Since: rec.Time, StaleAt: rec.Time.Add(r.opts.StaleLockAge),
			}
		}
	}
	return nil
}

func (r *Repository) loadLock(ctx context.Context, name string) (lockRecord, error) {
	var rec lockRecord
	raw, err := r.be.Load(ctx, Handle{Type: LockFile, Name: name}, 0, 0)
	if err != nil {
		return rec, err
	}
	plain, err := r.crypt.open(nil, raw, adLock)
	if err != nil {
		return rec, fmt.Errorf("lock %s: %w", short(name), err)
	}
	if err := json.Unmarshal(plain, &rec); err != nil {
		return rec, fmt.Errorf("lock %s: %w", short(name), err)
	}
	return rec, nil
}

// lockStale says whether a lock no longer protects anything: not refreshed
// for StaleLockAge, or its holder is a process of this host that is gone.
func (r *Repository) lockStale(rec lockRecord, now time.Time) bool {
	return now.Sub(rec.Time) > r.opts.StaleLockAge || rec.holderDead()
}

// RemoveLocks deletes stale locks (not refreshed for StaleLockAge, or held
// by a process of this host that is gone), or with all every lock (only when
// you know no other process is using the repository). It returns how many
// it removed.
func (r *Repository) RemoveLocks(ctx context.Context, all bool) (int, error) {
	names, err := r.listNames(ctx, LockFile)
	if err != nil {
		return 0, err
	}
	now, n := r.opts.Now(), 0
	for name := range names {
		if !all {
			rec, err := r.loadLock(ctx, name)
			if err == nil && !r.lockStale(rec, now) {
				continue
			}
		}
		if err := r.be.Remove(ctx, Handle{Type: LockFile, Name: name}); err != nil {
			return n, fmt.Errorf("remove lock %s: %w", short(name), err)
		}
		n++
	}
	return n, nil
}
