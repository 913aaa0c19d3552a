package repository_test

import (
	"context"
	"testing"
	"time"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

// testKDF keeps password derivation cheap in tests.
var testKDF = repository.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// testChunker uses small chunks so small test files still split.
var testChunker = repository.ChunkerParams{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}

// fakeClock is an injectable clock tests advance by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time      { return c.t }
func (c *fakeClock) Add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)} }
func testOpenOptions(c *fakeClock) repository.OpenOptions {
	return repository.OpenOptions{Now: c.Now, PackSize: 256 << 10, Hostname: "test-host"}
}

func newTestRepo(t testing.TB) (*repository.Repository, *mem.Backend, *fakeClock) {
	t.Helper()
	be := mem.New()
	clock := newClock()
	r, err := repository.Init(context.Background(), be, "secret", repository.InitOptions{
		OpenOptions: testOpenOptions(clock), KDF: testKDF, Chunker: testChunker,
	})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, be, clock
}
