package mem_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository/backend/mem"
)

func TestSaveLoadRemove(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	h := repository.Handle{Type: repository.PackFile, Name: "ab"}
	data := []byte("hello world")
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the backend must have copied
	got, err := b.Load(ctx, h, 6, 5)
	if err != nil || string(got) != "world" {
		t.Fatalf("Load range = %q, %v", got, err)
	}
	got, err = b.Load(ctx, h, 0, 0)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("Load all = %q, %v", got, err)
	}
	if _, err := b.Load(ctx, h, 6, 50); err == nil {
		t.Fatal("Load past end succeeded")
	}
	if err := b.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, h); !errors.Is(err, repository.ErrNotExist) {
		t.Fatalf("Stat after remove: %v", err)
	}
	if err := b.Remove(ctx, h); err != nil {
		t.Fatalf("removing absent object: %v", err)
	}
}

func TestFaultHook(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	boom := errors.New("boom")
	b.SetFault(func(op mem.Op, h repository.Handle) error {
		if op == mem.OpSave && h.Type == repository.IndexFile {
			return boom
		}
		return nil
	})
	if err := b.Save(ctx, repository.Handle{Type: repository.IndexFile, Name: "x"}, nil); !errors.Is(err, boom) {
		t.Fatalf("faulted save: %v", err)
	}
	if b.Len(repository.IndexFile) != 0 {
		t.Fatal("faulted save stored the object")
	}
	if err := b.Save(ctx, repository.Handle{Type: repository.PackFile, Name: "x"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := repository.Handle{Type: repository.PackFile, Name: string(rune('a' + i))}
			for j := 0; j < 100; j++ {
				_ = b.Save(ctx, h, []byte{byte(j)})
				_, _ = b.Load(ctx, h, 0, 0)
				_ = b.List(ctx, repository.PackFile, func(repository.FileInfo) error { return nil })
			}
		}(i)
	}
	wg.Wait()
	n := 0
	_ = b.List(ctx, repository.PackFile, func(repository.FileInfo) error { n++; return nil })
	if n != 8 {
		t.Fatalf("listed %d packs, want 8", n)
	}
}
