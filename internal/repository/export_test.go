package repository

import (
	"context"
	"time"
)

// LockForTest takes a repository lock as an operation would, so a test
// process can hold one without running a whole backup or prune.
func (r *Repository) LockForTest(ctx context.Context, exclusive bool, op string) (unlock func(), err error) {
	l, err := r.lock(ctx, exclusive, op)
	if err != nil {
		return nil, err
	}
	return func() { l.unlock(ctx) }, nil
}

// LockRecordForTest is a lock object's content, for tests that check what a
// lock says about its holder.
type LockRecordForTest = lockRecord

// LockTimesForTest returns the time each lock object says it was last
// refreshed.
func (r *Repository) LockTimesForTest(ctx context.Context) ([]time.Time, error) {
	names, err := r.listNames(ctx, LockFile)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for n := range names {
		rec, err := r.loadLock(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Time)
	}
	return out, nil
}
