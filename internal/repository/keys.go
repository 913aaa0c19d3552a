package repository

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/zeebo/blake3"
)

// masterKey is the secret every key file wraps. It never changes, so adding
// or changing a password re-wraps it and re-encrypts no data.
type masterKey struct {
	Encryption  []byte `json:"encryption"`   // AES-256-GCM key for everything
	ChunkID     []byte `json:"chunk_id"`     // BLAKE3 key: chunk id = keyed hash of plaintext
	ChunkerSeed []byte `json:"chunker_seed"` // derives the FastCDC gear table
}

func newMasterKey(rnd io.Reader) (*masterKey, error) {
	mk := &masterKey{Encryption: make([]byte, 32), ChunkID: make([]byte, 32), ChunkerSeed: make([]byte, 32)}
	for _, b := range [][]byte{mk.Encryption, mk.ChunkID, mk.ChunkerSeed} {
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, fmt.Errorf("read random master key: %w", err)
		}
	}
	return mk, nil
}

// keyFile is stored in plaintext JSON under keys/<blake3 of the file>; only
// Master is secret (sealed with the password-derived key).
type keyFile struct {
	Version   int       `json:"version"`
	Created   time.Time `json:"created"`
	Hostname  string    `json:"hostname,omitempty"`
	KDF       string    `json:"kdf"`
	Time      uint32    `json:"time"`
	MemoryKiB uint32    `json:"memory_kib"`
	Threads   uint8     `json:"threads"`
	Salt      []byte    `json:"salt"`
	Master    []byte    `json:"master"`

	name string
}

func (k *keyFile) params() KDFParams {
	return KDFParams{Time: k.Time, MemoryKiB: k.MemoryKiB, Threads: k.Threads}
}

// unlock returns the master key, or ErrWrongPassword.
func (k *keyFile) unlock(password string) (*masterKey, error) {
	if k.KDF != "argon2id" {
		return nil, fmt.Errorf("key %s: unsupported kdf %q", k.name, k.KDF)
	}
	p := k.params()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("key %s: %w", k.name, err)
	}
	c, err := newCrypter(p.derive(password, k.Salt), nil)
	if err != nil {
		return nil, err
	}
	raw, err := c.open(nil, k.Master, adKey)
	if err != nil {
		return nil, ErrWrongPassword
	}
	var mk masterKey
	if err := json.Unmarshal(raw, &mk); err != nil {
		return nil, fmt.Errorf("key %s: decode master key: %w", k.name, err)
	}
	if len(mk.Encryption) != 32 || len(mk.ChunkID) != 32 || len(mk.ChunkerSeed) != 32 {
		return nil, fmt.Errorf("key %s: master key has wrong sizes", k.name)
	}
	return &mk, nil
}

// listKeys loads the key files; damaged names those that are not key files
// at all (truncated, overwritten), which no password can open.
func listKeys(ctx context.Context, be Backend) (keys []*keyFile, damaged []string, err error) {
	var names []string
	err = be.List(ctx, KeyFile, func(fi FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Strings(names)
	for _, n := range names {
		raw, err := be.Load(ctx, Handle{Type: KeyFile, Name: n}, 0, 0)
		if errors.Is(err, ErrNotExist) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, nil, fmt.Errorf("load key %s: %w", n, err)
		}
		var k keyFile
		if err := json.Unmarshal(raw, &k); err != nil || k.KDF == "" || len(k.Master) == 0 {
			damaged = append(damaged, n) // not a key we can use; others may be
			continue
		}
		k.name = n
		keys = append(keys, &k)
	}
	return keys, damaged, nil
}

// saveKey wraps the master key with password and stores a new key file.
func (r *Repository) saveKey(ctx context.Context, password string, p KDFParams) (string, error) {
	if password == "" {
		return "", errors.New("the password is empty; choose a non-empty password")
	}
	salt := make([]byte, 32)
	if _, err := io.ReadFull(r.opts.Rand, salt); err != nil {
		return "", fmt.Errorf("read random salt: %w", err)
	}
	c, err := newCrypter(p.derive(password, salt), r.opts.Rand)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(r.key)
	if err != nil {
		return "", err
	}
	sealed, err := c.seal(nil, raw, adKey)
	if err != nil {
		return "", err
	}
	kf := keyFile{
		Version: 1, Created: r.opts.Now().UTC(), Hostname: r.opts.Hostname, KDF: "argon2id",
		Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads, Salt: salt, Master: sealed,
	}
	data, err := json.Marshal(kf)
	if err != nil {
		return "", err
	}
	sum := blake3.Sum256(data)
	name := hex.EncodeToString(sum[:])
	if err := r.be.Save(ctx, Handle{Type: KeyFile, Name: name}, data); err != nil {
		return "", fmt.Errorf("save key %s: %w", name[:8], err)
	}
	return name, nil
}

// KeyInfo describes one password slot.
type KeyInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname,omitempty"`
	Current  bool      `json:"current"` // the key this Repository was opened with
}

// Keys lists the password slots.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	keys, _, err := listKeys(ctx, r.be)
	if err != nil {
		return nil, err
	}
	r.keyMu.Lock()
	current := r.keyName
	r.keyMu.Unlock()
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, KeyInfo{ID: k.name, Created: k.Created, Hostname: k.Hostname, Current: k.name == current})
	}
	return out, nil
}

// AddPassword adds a password that opens the repository; existing ones keep
// working. It returns the new key's id.
func (r *Repository) AddPassword(ctx context.Context, password string) (string, error) {
	name, err := r.saveKey(ctx, password, r.keyKDF)
	if err != nil {
		return "", fmt.Errorf("add password to %s: %w", r.be.Location(), err)
	}
	return name, nil
}

// RemovePassword removes every key that password opens. It refuses to
// remove the last key (the repository would become unreadable).
func (r *Repository) RemovePassword(ctx context.Context, password string) error {
	keys, _, err := listKeys(ctx, r.be)
	if err != nil {
		return fmt.Errorf("remove password from %s: %w", r.be.Location(), err)
	}
	var match []*keyFile
	for _, k := range keys {
		mk, err := k.unlock(password)
		if err == nil && string(mk.Encryption) == string(r.key.Encryption) {
			match = append(match, k)
		}
	}
	if len(match) == 0 {
		return fmt.Errorf("remove password from %s: %w", r.be.Location(), ErrWrongPassword)
	}
	if len(match) == len(keys) {
		return fmt.Errorf("remove password from %s: it is the only password; add another one first", r.be.Location())
	}
	for _, k := range match {
		if err := r.be.Remove(ctx, Handle{Type: KeyFile, Name: k.name}); err != nil {
			return fmt.Errorf("remove key %s: %w", k.name[:8], err)
		}
	}
	return nil
}

// ChangePassword replaces the password this Repository was opened with: it
// stores a new key file wrapping the same master key, then removes the old
// one. No data is re-encrypted. A crash in between leaves both passwords
// valid, never neither.
func (r *Repository) ChangePassword(ctx context.Context, newPassword string) error {
	name, err := r.saveKey(ctx, newPassword, r.keyKDF)
	if err != nil {
		return fmt.Errorf("change password of %s: %w", r.be.Location(), err)
	}
	r.keyMu.Lock()
	old := r.keyName
	r.keyName = name
	r.keyMu.Unlock()
	if old != "" && old != name {
		if err := r.be.Remove(ctx, Handle{Type: KeyFile, Name: old}); err != nil {
			return fmt.Errorf("change password of %s: new password saved but removing old key %s failed (both passwords work until it is removed): %w", r.be.Location(), old[:8], err)
		}
	}
	return nil
}
