package repository_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// A repository whose only key file is damaged is not "no repository here":
// Open says the keys are damaged and not to initialise, so no caller
// answers it by creating a new repository over the old one.
func TestOpenWithDamagedKeySaysDamagedNotMissing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, be, clock := newTestRepo(t)
	var keys []string
	if err := be.List(ctx, repository.KeyFile, func(fi repository.FileInfo) error { keys = append(keys, fi.Name); return nil }); err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	h := repository.Handle{Type: repository.KeyFile, Name: keys[0]}
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, []byte("{\"kdf\": trunc")); err != nil {
		t.Fatal(err)
	}
	_, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if errors.Is(err, repository.ErrNoRepository) || !errors.Is(err, repository.ErrKeyDamaged) {
		t.Fatalf("open with a damaged key: %v, want ErrKeyDamaged and not ErrNoRepository", err)
	}
	if !strings.Contains(err.Error(), "do not initialise") || !strings.Contains(err.Error(), keys[0][:8]) {
		t.Fatalf("message %q does not name the damaged key and say not to initialise", err)
	}

	// With the key files gone entirely but the config still there, it is
	// still a repository that lost its keys.
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, be, "secret", testOpenOptions(clock)); errors.Is(err, repository.ErrNoRepository) || !errors.Is(err, repository.ErrKeyDamaged) {
		t.Fatalf("open with config but no keys: %v, want ErrKeyDamaged", err)
	}
}

func TestCheckNewPassword(t *testing.T) {
	t.Parallel()
	for pw, ok := range map[string]bool{"": false, "secret": false, "elevenchars": false, "twelve chars": true, "äöüäöüäöüäöü": true} {
		err := repository.CheckNewPassword(pw)
		if (err == nil) != ok || (err != nil && !errors.Is(err, repository.ErrPasswordTooShort)) {
			t.Errorf("CheckNewPassword(%q) = %v, want ok=%v", pw, err, ok)
		}
	}
}

// A snapshot manifest stored under another snapshot's id (it decrypts
// fine) is refused on load with a damage error, not returned as that
// snapshot.
func TestSnapshotWhoseContentDoesNotMatchItsIDIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	src := makeTree(t, 40)
	a := backupAt(t, r, src, repository.SnapshotMeta{Workload: "a"}, clock.Now())
	b := backupAt(t, r, src, repository.SnapshotMeta{Workload: "b"}, clock.Now())
	raw, err := be.Load(ctx, repository.Handle{Type: repository.SnapshotFile, Name: a.ID}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	hb := repository.Handle{Type: repository.SnapshotFile, Name: b.ID}
	if err := be.Remove(ctx, hb); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, hb, raw); err != nil {
		t.Fatal(err)
	}
	fresh, err := repository.Open(ctx, be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	s, err := fresh.Snapshot(ctx, b.ID)
	if err == nil {
		t.Fatalf("snapshot %s loaded as workload %q from a copy of %s", b.ShortID(), s.Workload, a.ShortID())
	}
	if !errors.Is(err, repository.ErrDamaged) || !strings.Contains(err.Error(), "does not match the snapshot id") {
		t.Fatalf("load of a replaced snapshot: %v, want a damage error naming the id mismatch", err)
	}
}
