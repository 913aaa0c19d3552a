package repository

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
)

// NodeType is the kind of a tree entry.
type NodeType uint8

const (
	NodeFile    NodeType = 1
	NodeDir     NodeType = 2
	NodeSymlink NodeType = 3
)

func (t NodeType) String() string {
	switch t {
	case NodeFile:
		return "file"
	case NodeDir:
		return "dir"
	case NodeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("nodetype(%d)", uint8(t))
}

// MarshalText writes the type name (file, dir, symlink).
func (t NodeType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// contentRef is one piece of a file: a chunk, or a hole (zero ID) of Length
// zero bytes that is never stored and restores as a sparse region.
type contentRef struct {
	ID     ID
	Length uint32
}

// node is one entry of a tree.
type node struct {
	Name  string
	Type  NodeType
	Mode  fs.FileMode // permission bits plus setuid, setgid, sticky
	MTime int64       // unix nanoseconds
	UID   uint32
	GID   uint32
	Inode uint64

	// files
	Size      uint64
	BlockSize uint32 // fixed-size chunking block size; 0 for content-defined
	Content   []contentRef
	// FastHash, if not nil, has one seeded XXH3-128 per content piece (zero
	// for holes), so the next backup can tell unchanged blocks without the
	// keyed BLAKE3 (see blockhash.go). Only version 2 trees carry it.
	FastHash [][16]byte

	// directories
	Subtree ID

	// symlinks
	Target string
}

const modeMask = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// tree is one directory: its entries sorted by name, names unique.
type tree struct {
	Nodes []*node
}

// find returns the entry called name, or nil.
func (t *tree) find(name string) *node {
	lo, hi := 0, len(t.Nodes)
	for lo < hi {
		m := (lo + hi) / 2
		switch c := strings.Compare(t.Nodes[m].Name, name); {
		case c == 0:
			return t.Nodes[m]
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return nil
}

// Tree blob plaintext (before compression and encryption):
//
//	version  byte (1)
//	count    uvarint
//	count ×  name (uvarint length + bytes) | type byte | mode uvarint |
//	         mtime varint | uid uvarint | gid uvarint | inode uvarint | body
//	body: file    size uvarint | blockSize uvarint | n uvarint | n × (id [32]byte | length uvarint)
//	      dir     subtree [32]byte
//	      symlink target (uvarint length + bytes)
//
// Version 2 (written only for a directory with a file that has FastHash)
// adds to every file body: kind byte (0 none, 1 XXH3-128) and, for kind
// 1, n × hash [16]byte. Trees without fast hashes stay version 1, so they
// keep their ids and older readers can read them.
const (
	treeVersion         = 1
	treeVersionFastHash = 2
)

const fastHashXXH3 = 1

// maxTreeBlob bounds one encoded directory (about 100k entries of small
// files), so the decoder's and packer's buffers stay bounded.
const maxTreeBlob = 16 << 20

const (
	maxNameLen   = 4096
	maxTargetLen = 64 << 10
)

func encodeTree(t *tree) []byte {
	n := 16
	for _, nd := range t.Nodes {
		n += len(nd.Name) + len(nd.Target) + 48 + len(nd.Content)*36
	}
	version := byte(treeVersion)
	for _, nd := range t.Nodes {
		if nd.Type == NodeFile && nd.FastHash != nil {
			version = treeVersionFastHash
			n += len(nd.FastHash) * 16
		}
	}
	b := make([]byte, 0, n)
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	for _, nd := range t.Nodes {
		b = binary.AppendUvarint(b, uint64(len(nd.Name)))
		b = append(b, nd.Name...)
		b = append(b, byte(nd.Type))
		b = binary.AppendUvarint(b, uint64(nd.Mode&modeMask))
		b = binary.AppendVarint(b, nd.MTime)
		b = binary.AppendUvarint(b, uint64(nd.UID))
		b = binary.AppendUvarint(b, uint64(nd.GID))
		b = binary.AppendUvarint(b, nd.Inode)
		switch nd.Type {
		case NodeFile:
			b = binary.AppendUvarint(b, nd.Size)
			b = binary.AppendUvarint(b, uint64(nd.BlockSize))
			b = binary.AppendUvarint(b, uint64(len(nd.Content)))
			for _, c := range nd.Content {
				b = append(b, c.ID[:]...)
				b = binary.AppendUvarint(b, uint64(c.Length))
			}
			if version == treeVersionFastHash {
				if nd.FastHash == nil {
					b = append(b, 0)
				} else {
					b = append(b, fastHashXXH3)
					for _, h := range nd.FastHash {
						b = append(b, h[:]...)
					}
				}
			}
		case NodeDir:
			b = append(b, nd.Subtree[:]...)
		case NodeSymlink:
			b = binary.AppendUvarint(b, uint64(len(nd.Target)))
			b = append(b, nd.Target...)
		}
	}
	return b
}

// validName rejects names that could address anything but a direct child:
// empty, ".", "..", or containing a slash or NUL. Restore relies on this.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= maxNameLen && !strings.ContainsAny(n, "/\x00")
}

func decodeTree(b []byte) (*tree, error) {
	d := decoder{b: b}
	version := d.byte()
	if version != treeVersion && version != treeVersionFastHash {
		if d.err != nil {
			return nil, fmt.Errorf("tree: %w", d.err)
		}
		return nil, fmt.Errorf("tree: unsupported version %d", version)
	}
	n := d.count(9)
	t := &tree{Nodes: make([]*node, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		nd := &node{}
		nlen := d.uvarint()
		if nlen > maxNameLen {
			return nil, fmt.Errorf("tree: entry %d: name of %d bytes is too long", i, nlen)
		}
		nd.Name = string(d.bytes(nlen))
		nd.Type = NodeType(d.byte())
		mode := d.uvarint()
		nd.MTime = d.varint()
		uid, gid := d.uvarint(), d.uvarint()
		nd.Inode = d.uvarint()
		if d.err != nil {
			break
		}
		if !validName(nd.Name) {
			return nil, fmt.Errorf("tree: entry %d: invalid name %q", i, nd.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= nd.Name {
			return nil, fmt.Errorf("tree: entry %q: names not sorted and unique", nd.Name)
		}
		if mode&^uint64(modeMask) != 0 || uid > 1<<32-1 || gid > 1<<32-1 {
			return nil, fmt.Errorf("tree: entry %q: invalid mode or owner", nd.Name)
		}
		nd.Mode, nd.UID, nd.GID = fs.FileMode(mode), uint32(uid), uint32(gid)
		switch nd.Type {
		case NodeFile:
			nd.Size = d.uvarint()
			bs := d.uvarint()
			nc := d.count(33)
			if d.err != nil {
				break
			}
			if bs > maxChunkLimit {
				return nil, fmt.Errorf("tree: file %q: block size %d too large", nd.Name, bs)
			}
			nd.BlockSize = uint32(bs)
			if nc > 0 {
				nd.Content = make([]contentRef, nc)
			}
			var sum uint64
			for j := range nd.Content {
				d.read(nd.Content[j].ID[:])
				l := d.uvarint()
				if d.err != nil {
					break
				}
				if l == 0 || l > maxChunkLimit {
					return nil, fmt.Errorf("tree: file %q: content piece %d has length %d", nd.Name, j, l)
				}
				nd.Content[j].Length = uint32(l)
				sum += l
			}
			if d.err == nil && sum != nd.Size {
				return nil, fmt.Errorf("tree: file %q: content adds up to %d bytes, size says %d", nd.Name, sum, nd.Size)
			}
			if version == treeVersionFastHash && d.err == nil {
				switch kind := d.byte(); {
				case d.err != nil || kind == 0:
				case kind != fastHashXXH3 || bs == 0:
					return nil, fmt.Errorf("tree: file %q: unknown fast hash kind %d (block size %d)", nd.Name, kind, bs)
				case nc > 0:
					if d.rest() < nc*16 {
						d.err = errShort
						break
					}
					nd.FastHash = make([][16]byte, nc)
					for j := range nd.FastHash {
						d.read(nd.FastHash[j][:])
					}
				}
			}
		case NodeDir:
			d.read(nd.Subtree[:])
		case NodeSymlink:
			tl := d.uvarint()
			if tl > maxTargetLen {
				return nil, fmt.Errorf("tree: symlink %q: target too long", nd.Name)
			}
			nd.Target = string(d.bytes(tl))
		default:
			return nil, fmt.Errorf("tree: entry %q: unknown type %d", nd.Name, nd.Type)
		}
		t.Nodes = append(t.Nodes, nd)
	}
	if d.err != nil {
		return nil, fmt.Errorf("tree: %w", d.err)
	}
	if d.rest() != 0 {
		return nil, fmt.Errorf("tree: %d trailing bytes", d.rest())
	}
	return t, nil
}

// FileEntry describes one entry of a snapshot, for listings and streams.
type FileEntry struct {
	Path    string      `json:"path"` // slash-separated, relative to the snapshot root
	Type    NodeType    `json:"type"`
	Mode    fs.FileMode `json:"mode"`
	Size    int64       `json:"size"`
	ModTime time.Time   `json:"mtime"`
	UID     int         `json:"uid"`
	GID     int         `json:"gid"`
	Target  string      `json:"target,omitempty"` // symlinks
}

func (nd *node) entry(path string) FileEntry {
	return FileEntry{
		Path: path, Type: nd.Type, Mode: nd.Mode, Size: int64(nd.Size),
		ModTime: time.Unix(0, nd.MTime), UID: int(nd.UID), GID: int(nd.GID), Target: nd.Target,
	}
}

// treeCache keeps decoded trees (they are immutable) up to a byte budget.
type treeCache struct {
	r      *Repository
	mu     sync.Mutex
	m      map[ID]*tree
	size   map[ID]int
	total  int
	budget int
}

func newTreeCache(r *Repository, budget int) *treeCache {
	return &treeCache{r: r, m: map[ID]*tree{}, size: map[ID]int{}, budget: budget}
}

func (c *treeCache) get(id ID) *tree {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *treeCache) put(id ID, t *tree, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return
	}
	for k := range c.m { // evict arbitrary entries; trees are cheap to reload
		if c.total+n <= c.budget {
			break
		}
		c.total -= c.size[k]
		delete(c.m, k)
		delete(c.size, k)
	}
	c.m[id], c.size[id] = t, n
	c.total += n
}
