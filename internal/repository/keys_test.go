package repository_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

func TestOpenWithWrongPasswordSaysWrongPassword(t *testing.T) {
	t.Parallel()
	r, be, clock := newTestRepo(t)
	_ = r
	_, err := repository.Open(context.Background(), be, "not the secret", testOpenOptions(clock))
	if !errors.Is(err, repository.ErrWrongPassword) {
		t.Fatalf("Open with wrong password: got %v, want ErrWrongPassword", err)
	}
	if !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("message %q does not say wrong password", err)
	}
	r2, err := repository.Open(context.Background(), be, "secret", testOpenOptions(clock))
	if err != nil {
		t.Fatalf("Open with right password: %v", err)
	}
	if r2.ID() != r.ID() {
		t.Fatalf("reopened repository id %s, want %s", r2.ID(), r.ID())
	}
}

func TestOpenEmptyBackendSaysNoRepository(t *testing.T) {
	t.Parallel()
	_, err := repository.Open(context.Background(), mem.New(), "x", repository.OpenOptions{})
	if !errors.Is(err, repository.ErrNoRepository) {
		t.Fatalf("got %v, want ErrNoRepository", err)
	}
}

func TestInitTwiceRefused(t *testing.T) {
	t.Parallel()
	_, be, clock := newTestRepo(t)
	_, err := repository.Init(context.Background(), be, "other", repository.InitOptions{OpenOptions: testOpenOptions(clock), KDF: testKDF})
	if !errors.Is(err, repository.ErrAlreadyInitialized) {
		t.Fatalf("second init: got %v", err)
	}
}

func TestPasswordsAddChangeRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be, clock := newTestRepo(t)
	if _, err := r.AddPassword(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"secret", "second"} {
		if _, err := repository.Open(ctx, be, pw, testOpenOptions(clock)); err != nil {
			t.Fatalf("open with %q after add: %v", pw, err)
		}
	}
	if err := r.ChangePassword(ctx, "first-renewed"); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, be, "secret", testOpenOptions(clock)); !errors.Is(err, repository.ErrWrongPassword) {
		t.Fatalf("old password still opens after change: %v", err)
	}
	if _, err := repository.Open(ctx, be, "first-renewed", testOpenOptions(clock)); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := r.RemovePassword(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, be, "second", testOpenOptions(clock)); !errors.Is(err, repository.ErrWrongPassword) {
		t.Fatalf("removed password still opens: %v", err)
	}
	if err := r.RemovePassword(ctx, "first-renewed"); err == nil {
		t.Fatal("removing the last password succeeded")
	}
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].Current {
		t.Fatalf("keys = %+v, %v; want one current key", keys, err)
	}
}
