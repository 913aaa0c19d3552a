package repository

import (
	"context"
	"errors"
)

// FileType names the kind of object a backend stores; backends map it to a
// directory or key prefix and know nothing else about the format.
type FileType string

const (
	ConfigFile   FileType = "config"
	KeyFile      FileType = "keys"
	PackFile     FileType = "data"
	IndexFile    FileType = "index"
	SnapshotFile FileType = "snapshots"
	LockFile     FileType = "locks"
)

// Handle names one stored object.
type Handle struct {
	Type FileType
	Name string
}

// FileInfo describes one stored object.
type FileInfo struct {
	Name string
	Size int64
}

// ErrNotExist is returned (wrapped) by backends when an object is absent.
var ErrNotExist = errors.New("object does not exist")

// Backend is where repository objects live: a directory, an S3 bucket, memory.
// Every implementation passes backendtest. Objects are immutable once saved
// except the config and lock files; Save must be atomic (a reader sees the
// whole object or none of it).
type Backend interface {
	// Save stores data under h atomically, replacing any existing object.
	Save(ctx context.Context, h Handle, data []byte) error
	// Load returns length bytes from offset; length 0 means to the end.
	Load(ctx context.Context, h Handle, offset, length int64) ([]byte, error)
	// Stat reports size; ErrNotExist if absent.
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	// Remove deletes h; removing an absent object is not an error.
	Remove(ctx context.Context, h Handle) error
	// List calls fn for every object of type t, in no particular order.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	// Location describes the backend for messages (no secrets).
	Location() string
	Close() error
}
