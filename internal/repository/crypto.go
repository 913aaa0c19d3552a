package repository

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/crypto/argon2"
)

// Every encrypted object and blob is nonce || ciphertext || tag with
// AES-256-GCM. The associated data binds a ciphertext to its role (and, for
// blobs, to its id), so objects cannot be swapped for one another unnoticed.
const (
	nonceSize  = 12
	tagSize    = 16
	sealExtra  = nonceSize + tagSize
	masterSize = 32
)

// Associated-data labels for whole objects.
var (
	adConfig   = []byte("clusterguard config v1")
	adIndex    = []byte("clusterguard index v1")
	adSnapshot = []byte("clusterguard snapshot v1")
	adLock     = []byte("clusterguard lock v1")
	adHeader   = []byte("clusterguard pack header v1")
	adKey      = []byte("clusterguard master key v1")
)

// errAuth is what open returns for any ciphertext that does not
// authenticate: wrong key, bit flip, truncation or a swapped object.
var errAuth = errors.New("ciphertext does not authenticate (corrupted or tampered)")

type crypter struct {
	aead cipher.AEAD
	rand io.Reader
}

func newCrypter(key []byte, rnd io.Reader) (*crypter, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create GCM: %w", err)
	}
	return &crypter{aead: aead, rand: rnd}, nil
}

// seal appends nonce||ciphertext||tag of plaintext to dst.
func (c *crypter) seal(dst, plaintext, ad []byte) ([]byte, error) {
	n := len(dst)
	dst = grow(dst, sealExtra+len(plaintext))
	nonce := dst[n : n+nonceSize]
	if _, err := io.ReadFull(c.rand, nonce); err != nil {
		return nil, fmt.Errorf("read random nonce: %w", err)
	}
	return c.aead.Seal(dst[:n+nonceSize], nonce, plaintext, ad), nil
}

// open appends the plaintext of sealed to dst.
func (c *crypter) open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < sealExtra {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", errAuth, len(sealed))
	}
	out, err := c.aead.Open(dst, sealed[:nonceSize], sealed[nonceSize:], ad)
	if err != nil {
		return nil, errAuth
	}
	return out, nil
}

// openInPlace decrypts sealed over its own storage and returns the plaintext.
func (c *crypter) openInPlace(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < sealExtra {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", errAuth, len(sealed))
	}
	ct := sealed[nonceSize:]
	out, err := c.aead.Open(ct[:0], sealed[:nonceSize], ct, ad)
	if err != nil {
		return nil, errAuth
	}
	return out, nil
}

// grow extends b's capacity by at least n bytes, keeping its length.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// KDFParams tune the argon2id derivation of a key-encryption key from a
// password. Higher values make password guessing slower and Open slower.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8
}

// DefaultKDF costs roughly 0.05 s and 32 MiB per Open: within the OWASP
// argon2id recommendations (at least 19 MiB with 2 passes) while keeping
// the memory of short commands (listing, an unchanged backup) small.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 32 << 10, Threads: 4}

// Limits on KDF parameters read from key files, so a crafted key file cannot
// make Open allocate or spin without bound.
const (
	maxKDFMemoryKiB = 4 << 20
	maxKDFTime      = 64
)

func (p KDFParams) validate() error {
	switch {
	case p.Time == 0 || p.Time > maxKDFTime:
		return fmt.Errorf("kdf time %d outside 1..%d", p.Time, maxKDFTime)
	case p.Threads == 0:
		return fmt.Errorf("kdf threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB:
		return fmt.Errorf("kdf memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemoryKiB)
	}
	return nil
}

func (p KDFParams) derive(password string, salt []byte) []byte {
	prefault(int(p.MemoryKiB) << 10)
	k := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	// The KDF's memory (32 MiB by default, see DefaultKDF) is garbage now, but it raised
	// the GC's heap goal: without a collection here the process would keep
	// it and grow a full working set on top (twice the peak memory).
	runtime.GC()
	return k
}

// prefault writes to n bytes of fresh heap and frees them, so the KDF's
// allocation right after reuses pages that are already mapped. argon2's
// first touch of fresh memory is a read, which maps the shared zero page
// and then takes a second, copy-on-write fault with a TLB shootdown on the
// first write: on a 2-core VM that doubled the cost of every Open (about
// 110 ms instead of 45 ms with the default parameters).
func prefault(n int) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	runtime.GC() // b is dead here, so its pages are free for the KDF
}
