package sqlite

import (
	"context"
	"fmt"
)

// Compact rewrites the database file without its free pages and empties
// the write-ahead log, so data that was overwritten (e.g. repository secrets
// an older release stored in plaintext, sealed since) is no longer in any
// byte of the catalog's files. It takes as long as copying the catalog.
func (s *Store) Compact(ctx context.Context) error {
	for _, stmt := range []string{`PRAGMA wal_checkpoint(TRUNCATE)`, `VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: compact (%s): %w", s.Name(), stmt, err)
		}
	}
	return nil
}
