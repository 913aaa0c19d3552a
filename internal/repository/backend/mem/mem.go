// Package mem is an in-memory repository.Backend: fast, safe for concurrent
// use, and with a fault hook so tests can make any operation fail or "crash"
// at a chosen point. It is the backend most repository tests run against.
package mem

import (
	"context"
	"fmt"
	"sync"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// Op names a backend operation, for the fault hook.
type Op string

const (
	OpSave   Op = "save"
	OpLoad   Op = "load"
	OpStat   Op = "stat"
	OpRemove Op = "remove"
	OpList   Op = "list"
)

// FaultFunc is consulted before every operation. A non-nil error is returned
// to the caller instead of performing the operation (so a failed Save stores
// nothing, like a crash just before the rename). For List the handle has
// only its Type set.
type FaultFunc func(op Op, h repository.Handle) error

// Backend keeps objects in a map. The zero value is not usable; call New.
type Backend struct {
	mu    sync.RWMutex
	objs  map[repository.Handle][]byte
	fault FaultFunc
}

var _ repository.Backend = (*Backend)(nil)

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{objs: make(map[repository.Handle][]byte)}
}

// SetFault installs (or, with nil, removes) the fault hook. Safe to call while
// other goroutines use the backend.
func (b *Backend) SetFault(f FaultFunc) {
	b.mu.Lock()
	b.fault = f
	b.mu.Unlock()
}

func (b *Backend) check(ctx context.Context, op Op, h repository.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	f := b.fault
	b.mu.RUnlock()
	if f != nil {
		return f(op, h)
	}
	return nil
}

// Save stores a copy of data under h, replacing any existing object.
func (b *Backend) Save(ctx context.Context, h repository.Handle, data []byte) error {
	if err := b.check(ctx, OpSave, h); err != nil {
		return err
	}
	if h.Name == "" || h.Type == "" {
		return fmt.Errorf("mem: save %q/%q: empty type or name", h.Type, h.Name)
	}
	c := make([]byte, len(data))
	copy(c, data)
	b.mu.Lock()
	b.objs[h] = c
	b.mu.Unlock()
	return nil
}

// Load returns a copy of length bytes from offset; length 0 means to the end.
func (b *Backend) Load(ctx context.Context, h repository.Handle, offset, length int64) ([]byte, error) {
	if err := b.check(ctx, OpLoad, h); err != nil {
		return nil, err
	}
	b.mu.RLock()
	data, ok := b.objs[h]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("mem: load %s/%s: %w", h.Type, h.Name, repository.ErrNotExist)
	}
	size := int64(len(data))
	if offset < 0 || length < 0 || offset > size {
		return nil, fmt.Errorf("mem: load %s/%s: range offset %d length %d outside object of %d bytes", h.Type, h.Name, offset, length, size)
	}
	end := size
	if length > 0 {
		end = offset + length
		if end > size {
			return nil, fmt.Errorf("mem: load %s/%s: range offset %d length %d outside object of %d bytes", h.Type, h.Name, offset, length, size)
		}
	}
	out := make([]byte, end-offset)
	copy(out, data[offset:end])
	return out, nil
}

// Stat reports the object's size, or ErrNotExist.
func (b *Backend) Stat(ctx context.Context, h repository.Handle) (repository.FileInfo, error) {
	if err := b.check(ctx, OpStat, h); err != nil {
		return repository.FileInfo{}, err
	}
	b.mu.RLock()
	data, ok := b.objs[h]
	b.mu.RUnlock()
	if !ok {
		return repository.FileInfo{}, fmt.Errorf("mem: stat %s/%s: %w", h.Type, h.Name, repository.ErrNotExist)
	}
	return repository.FileInfo{Name: h.Name, Size: int64(len(data))}, nil
}

// Remove deletes h; an absent object is not an error.
func (b *Backend) Remove(ctx context.Context, h repository.Handle) error {
	if err := b.check(ctx, OpRemove, h); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objs, h)
	b.mu.Unlock()
	return nil
}

// List calls fn for every object of type t. It works on a snapshot of the
// names, so fn may call back into the backend.
func (b *Backend) List(ctx context.Context, t repository.FileType, fn func(repository.FileInfo) error) error {
	if err := b.check(ctx, OpList, repository.Handle{Type: t}); err != nil {
		return err
	}
	b.mu.RLock()
	var infos []repository.FileInfo
	for h, data := range b.objs {
		if h.Type == t {
			infos = append(infos, repository.FileInfo{Name: h.Name, Size: int64(len(data))})
		}
	}
	b.mu.RUnlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Location describes the backend for messages.
func (b *Backend) Location() string { return fmt.Sprintf("mem:%p", b) }

// Close does nothing; the contents stay readable (tests reopen repositories
// on the same backend).
func (b *Backend) Close() error { return nil }

// Len reports how many objects of type t are stored (a test convenience).
func (b *Backend) Len(t repository.FileType) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for h := range b.objs {
		if h.Type == t {
			n++
		}
	}
	return n
}
