// Package secretbox encrypts the secrets a catalog must keep (repository
// passwords, S3 secret keys and session tokens) with a key the catalog
// does not hold: a copy of the database alone (a dump, a backup of the
// SQLite file, read access to the PostgreSQL tables) reveals none of them.
//
// A sealed value is "cgbox1:" followed by the base64 of a random 12-byte
// nonce and the AES-256-GCM ciphertext; the associated data binds it to its
// row and column, so a sealed value copied into another row or column does
// not open. Values without the prefix are plaintext written by an older
// release: Open returns them as they are, and the next write seals them.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a catalog key in bytes (AES-256).
const KeySize = 32

const prefix = "cgbox1:"

// ErrWrongKey: a sealed value does not open with the configured key (another
// catalog key, or the value was altered or moved to another row).
var ErrWrongKey = errors.New("catalog secret does not open with the configured catalog key")

// Box seals and opens catalog secrets. A nil *Box stores them as plaintext.
type Box struct {
	aead cipher.AEAD
	rand io.Reader
}

// New returns a Box for a KeySize-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("catalog key has %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("catalog key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("catalog key: %w", err)
	}
	return &Box{aead: aead, rand: rand.Reader}, nil
}

// Sealed reports whether v is a sealed value (not legacy plaintext).
func Sealed(v string) bool { return strings.HasPrefix(v, prefix) }

// Seal encrypts v bound to ad (e.g. "repositories/<name>/password"). The
// empty string (no secret) stays empty; a nil Box returns v.
func (b *Box) Seal(v, ad string) (string, error) {
	if b == nil || v == "" {
		return v, nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := io.ReadFull(b.rand, nonce); err != nil {
		return "", fmt.Errorf("seal catalog secret: read random nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(v), []byte(ad))
	return prefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal made with the same ad; plaintext (no prefix) is
// returned as it is. A sealed value with a nil Box, or one that does not
// authenticate, is an error wrapping ErrWrongKey (it never holds the value).
func (b *Box) Open(v, ad string) (string, error) {
	if !Sealed(v) {
		return v, nil
	}
	if b == nil {
		return "", fmt.Errorf("%s: %w: no catalog key is configured (set CLUSTERGUARD_CATALOG_KEY or CLUSTERGUARD_CATALOG_KEY_FILE)", ad, ErrWrongKey)
	}
	raw, err := base64.StdEncoding.DecodeString(v[len(prefix):])
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", fmt.Errorf("%s: %w: the stored value is malformed", ad, ErrWrongKey)
	}
	ns := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:ns], raw[ns:], []byte(ad))
	if err != nil {
		return "", fmt.Errorf("%s: %w: use the key the catalog was written with", ad, ErrWrongKey)
	}
	return string(plain), nil
}

// ParseKey reads a key written as base64 (standard or URL alphabet, padded
// or not) or hex; surrounding white space is ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("a catalog key is %d random bytes written as base64 or hex (make one with: head -c %d /dev/urandom | base64)", KeySize, KeySize)
}

// LoadKeyFile reads a key file. It refuses a file group or others may
// read: the key is what keeps the catalog's secrets.
func LoadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("catalog key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("catalog key file %s has mode %o: others may read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path) // #nosec G304 -- the operator names the key file
	if err != nil {
		return nil, fmt.Errorf("catalog key file: %w", err)
	}
	k, err := ParseKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("catalog key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile reads the key file at path, or creates it (mode 0600,
// a new random key) when it does not exist. Two processes creating it at
// once agree on one key: the loser of the exclusive create reads the
// winner's.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	k, err := LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("create catalog key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create catalog key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".catalog-key-*")
	if err != nil {
		return nil, fmt.Errorf("create catalog key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; write and sync it in full before it
	// appears under its name, so no reader ever sees half a key.
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write catalog key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write catalog key file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write catalog key file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadKeyFile(path) // another process made it first
		}
		return nil, fmt.Errorf("create catalog key file %s: %w", path, err)
	}
	return key, nil
}
