package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// cleanSnapPath normalises a path inside a snapshot to slash form without
// leading or trailing slashes ("" is the root).
func cleanSnapPath(p string) string {
	p = path.Clean("/" + strings.ReplaceAll(p, "\\", "/"))
	return strings.TrimPrefix(p, "/")
}

// findNode resolves p in the tree rooted at root. For "" it returns a
// synthetic directory node for the root.
func (r *Repository) findNode(ctx context.Context, root ID, p string) (*node, error) {
	nd := &node{Type: NodeDir, Subtree: root, Mode: 0o755}
	if p == "" {
		return nd, nil
	}
	for _, part := range strings.Split(p, "/") {
		if nd.Type != NodeDir {
			return nil, ErrFileNotFound
		}
		t, err := r.loadTree(ctx, nd.Subtree)
		if err != nil {
			return nil, err
		}
		if nd = t.find(part); nd == nil {
			return nil, ErrFileNotFound
		}
	}
	return nd, nil
}

// Files lists the entries of a snapshot at or below prefix (a file or a
// directory; "" for everything), depth first in name order.
func (r *Repository) Files(ctx context.Context, snapshotID, prefix string) ([]FileEntry, error) {
	snap, err := r.Snapshot(ctx, snapshotID)
	if err != nil {
		return nil, err
	}
	prefix = cleanSnapPath(prefix)
	nd, err := r.findNode(ctx, snap.Tree, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %q in snapshot %s: %w", prefix, snap.ShortID(), err)
	}
	var out []FileEntry
	if prefix != "" {
		out = append(out, nd.entry(prefix))
	}
	if nd.Type != NodeDir {
		return out, nil
	}
	var walk func(id ID, dir string, depth int) error
	walk = func(id ID, dir string, depth int) error {
		if depth > 4096 {
			return fmt.Errorf("directory nesting deeper than 4096 at %s", dir)
		}
		t, err := r.loadTree(ctx, id)
		if err != nil {
			return fmt.Errorf("list snapshot %s: directory %q: %w", snap.ShortID(), dir, err)
		}
		for _, c := range t.Nodes {
			p := c.Name
			if dir != "" {
				p = dir + "/" + c.Name
			}
			out = append(out, c.entry(p))
			if c.Type == NodeDir {
				if err := walk(c.Subtree, p, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(nd.Subtree, prefix, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// FileVersion is one snapshot's copy of a file.
type FileVersion struct {
	Snapshot Snapshot
	File     FileEntry
}

// FileVersions lists the snapshots (matching f, newest first) that hold
// path, with the file's metadata in each: the "previous versions" of a file.
func (r *Repository) FileVersions(ctx context.Context, p string, f SnapshotFilter) ([]FileVersion, error) {
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return nil, err
	}
	return r.FileVersionsIn(ctx, p, snaps)
}

// FileVersionsIn is FileVersions over snaps, for callers that select
// snapshots by more than a SnapshotFilter says (only their trees are read).
func (r *Repository) FileVersionsIn(ctx context.Context, p string, snaps []Snapshot) ([]FileVersion, error) {
	p = cleanSnapPath(p)
	var out []FileVersion
	for _, s := range snaps {
		nd, err := r.findNode(ctx, s.Tree, p)
		if errors.Is(err, ErrFileNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("versions of %s: snapshot %s: %w", p, s.ShortID(), err)
		}
		out = append(out, FileVersion{Snapshot: s, File: nd.entry(p)})
	}
	return out, nil
}

// OpenFile streams one regular file of a snapshot. The reader
// authenticates every chunk; damage surfaces as a read error naming the
// file and chunk.
func (r *Repository) OpenFile(ctx context.Context, snapshotID, p string) (io.ReadCloser, FileEntry, error) {
	snap, err := r.Snapshot(ctx, snapshotID)
	if err != nil {
		return nil, FileEntry{}, err
	}
	p = cleanSnapPath(p)
	nd, err := r.findNode(ctx, snap.Tree, p)
	if err != nil {
		return nil, FileEntry{}, fmt.Errorf("open %q in snapshot %s: %w", p, snap.ShortID(), err)
	}
	if nd.Type != NodeFile {
		return nil, FileEntry{}, fmt.Errorf("open %q in snapshot %s: it is a %s, not a regular file", p, snap.ShortID(), nd.Type)
	}
	return &fileReader{ctx: ctx, r: r, snap: snap.ShortID(), path: p, content: nd.Content}, nd.entry(p), nil
}

type fileReader struct {
	ctx     context.Context
	r       *Repository
	snap    string
	path    string
	content []contentRef
	cur     []byte // unread part of the current piece
	hole    int64  // unread zero bytes of the current hole
	buf     []byte
	next    int
	err     error
}

func (f *fileReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	for len(f.cur) == 0 && f.hole == 0 {
		if f.next >= len(f.content) {
			return 0, io.EOF
		}
		c := f.content[f.next]
		f.next++
		if c.ID.IsZero() {
			f.hole = int64(c.Length)
			continue
		}
		data, err := f.r.loadBlob(f.ctx, dataBlob, c.ID, f.buf)
		if err != nil {
			f.err = fmt.Errorf("read %s in snapshot %s: %w", f.path, f.snap, err)
			return 0, f.err
		}
		if len(data) != int(c.Length) {
			f.err = fmt.Errorf("read %s in snapshot %s: chunk %s has %d bytes, want %d", f.path, f.snap, c.ID.Short(), len(data), c.Length)
			return 0, f.err
		}
		if cap(data) > cap(f.buf) {
			f.buf = data[:0]
		}
		f.cur = data
	}
	if f.hole > 0 {
		n := int(min(int64(len(p)), f.hole))
		clear(p[:n])
		f.hole -= int64(n)
		return n, nil
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

func (f *fileReader) Close() error {
	f.err = io.ErrClosedPipe
	f.cur, f.buf = nil, nil
	return nil
}
