package repository

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FormatVersion is the repository format this package writes and reads.
const FormatVersion = 1

// OpenOptions tune a Repository opened by Open or Init. Zero values pick the
// defaults documented per field.
type OpenOptions struct {
	// Now is the clock for snapshot times, lock times and stale-lock expiry.
	// Default time.Now.
	Now func() time.Time
	// Rand supplies randomness for keys, nonces and object names. Default
	// crypto/rand.
	Rand io.Reader
	// Concurrency bounds worker pools (chunk processing, uploads, restore
	// writers, verify readers). Default GOMAXPROCS (at least 2).
	Concurrency int
	// PackSize is the target size of a data pack. Default 16 MiB.
	PackSize int
	// StaleLockAge: a lock not refreshed for this long is ignored and removed.
	// Default 5 minutes. Live locks are refreshed every StaleLockAge/5 (1
	// minute by default). A lock whose holder is a process of this host that
	// is gone is stale at once, whatever its age.
	StaleLockAge time.Duration
	// LockWait: how long to keep retrying when a conflicting lock is held.
	// Default 0 (fail at once with ErrLocked).
	LockWait time.Duration
	// Hostname is recorded in locks and keys for messages. Default os.Hostname.
	Hostname string
	// CompressionLevel for new blobs. Default zstd.SpeedDefault: about 5%
	// smaller than SpeedFastest on text for some 30% more compression CPU
	// (incompressible chunks are detected and stored without trying).
	CompressionLevel zstd.EncoderLevel
}

// InitOptions configure a new repository.
type InitOptions struct {
	OpenOptions
	// KDF for the first password. Default DefaultKDF.
	KDF KDFParams
	// Chunker sizes, fixed for the repository's lifetime. Default DefaultChunker.
	Chunker ChunkerParams
}

func (o *OpenOptions) setDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Concurrency <= 0 {
		o.Concurrency = max(runtime.GOMAXPROCS(0), 2)
	}
	if o.PackSize <= 0 {
		o.PackSize = 16 << 20
	}
	if o.StaleLockAge <= 0 {
		o.StaleLockAge = defaultStaleLockAge
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.CompressionLevel == 0 {
		o.CompressionLevel = zstd.SpeedDefault
	}
}

// config is the repository-wide settings object (stored encrypted under
// config/config).
type config struct {
	Version     int           `json:"version"`
	ID          string        `json:"id"`
	Created     time.Time     `json:"created"`
	Cipher      string        `json:"cipher"`
	ChunkHash   string        `json:"chunk_hash"`
	Compression string        `json:"compression"`
	Chunker     ChunkerParams `json:"chunker"`
}

var configHandle = Handle{Type: ConfigFile, Name: "config"}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	be    Backend
	opts  OpenOptions
	cfg   config
	key   *masterKey
	crypt *crypter
	chunk *chunker

	keyName string    // key file this session was opened with
	keyKDF  KDFParams // its KDF, reused for new passwords

	enc *zstd.Encoder
	dec *zstd.Decoder

	idx      *index
	idxPtrMu sync.RWMutex    // guards the idx pointer (swapped on a full reload)
	idxMu    sync.Mutex      // serialises index reloads
	idxSeen  map[string]bool // index files already loaded

	unsavedMu sync.Mutex    // held while saving, so savers see each other's work
	unsaved   []packEntries // uploaded packs no saved index file covers yet
	unsavedL  sync.Mutex    // guards unsaved

	keyMu sync.Mutex // guards keyName

	trees *treeCache
	snaps sync.Map // snapshot id -> Snapshot (snapshots are immutable)
}

// Init creates a repository in an empty backend, protected by password.
func Init(ctx context.Context, be Backend, password string, o InitOptions) (*Repository, error) {
	o.setDefaults()
	if password == "" {
		return nil, errors.New("init repository: the password is empty; choose a non-empty password")
	}
	if o.KDF == (KDFParams{}) {
		o.KDF = DefaultKDF
	}
	if err := o.KDF.validate(); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if o.Chunker == (ChunkerParams{}) {
		o.Chunker = DefaultChunker
	}
	if err := o.Chunker.validate(); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if _, err := be.Stat(ctx, configHandle); err == nil {
		return nil, fmt.Errorf("init repository at %s: %w", be.Location(), ErrAlreadyInitialized)
	} else if !errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("init repository at %s: check for an existing config: %w", be.Location(), err)
	}
	mk, err := newMasterKey(o.Rand)
	if err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	var rid [16]byte
	if _, err := io.ReadFull(o.Rand, rid[:]); err != nil {
		return nil, fmt.Errorf("init repository: read random id: %w", err)
	}
	cfg := config{
		Version: FormatVersion, ID: fmt.Sprintf("%x", rid), Created: o.Now().UTC(),
		Cipher: "aes-256-gcm", ChunkHash: "blake3-keyed", Compression: "zstd", Chunker: o.Chunker,
	}
	r, err := newRepository(be, o.OpenOptions, cfg, mk)
	if err != nil {
		return nil, err
	}
	// Key first, config last: the config's presence is what marks a
	// repository as initialised, so a crash in between leaves a location
	// that Init can still use.
	name, err := r.saveKey(ctx, password, o.KDF)
	if err != nil {
		return nil, fmt.Errorf("init repository at %s: %w", be.Location(), err)
	}
	r.keyName, r.keyKDF = name, o.KDF
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	sealed, err := r.crypt.seal(nil, raw, adConfig)
	if err != nil {
		return nil, err
	}
	if err := be.Save(ctx, configHandle, sealed); err != nil {
		return nil, fmt.Errorf("init repository at %s: save config: %w", be.Location(), err)
	}
	return r, nil
}

// Open unlocks an existing repository with password. A password that opens
// no key gives an error matching ErrWrongPassword.
func Open(ctx context.Context, be Backend, password string, o OpenOptions) (*Repository, error) {
	o.setDefaults()
	keys, damaged, err := listKeys(ctx, be)
	if err != nil {
		return nil, fmt.Errorf("open repository at %s: %w", be.Location(), err)
	}
	sealedCfg, err := be.Load(ctx, configHandle, 0, 0)
	if len(keys) == 0 {
		return nil, noUsableKey(be, damaged, err)
	}
	if errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("open repository at %s: %w (key files but no config: an init was interrupted; run init again)", be.Location(), ErrNoRepository)
	} else if err != nil {
		return nil, fmt.Errorf("open repository at %s: load config: %w", be.Location(), err)
	}
	var lastErr error
	for _, kf := range keys {
		mk, err := kf.unlock(password)
		if err != nil {
			if !errors.Is(err, ErrWrongPassword) {
				lastErr = err
			}
			continue
		}
		c, err := newCrypter(mk.Encryption, o.Rand)
		if err != nil {
			return nil, err
		}
		raw, err := c.open(nil, sealedCfg, adConfig)
		if err != nil {
			// A key left over from an interrupted init unlocks a master key
			// that does not belong to this config; try the others.
			lastErr = fmt.Errorf("key %s opens but does not decrypt the config: %w", kf.name[:8], err)
			continue
		}
		var cfg config
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("open repository at %s: decode config: %w", be.Location(), err)
		}
		if cfg.Version != FormatVersion {
			return nil, fmt.Errorf("open repository at %s: format version %d is not supported (this build reads version %d)", be.Location(), cfg.Version, FormatVersion)
		}
		if err := cfg.Chunker.validate(); err != nil {
			return nil, fmt.Errorf("open repository at %s: config: %w", be.Location(), err)
		}
		r, err := newRepository(be, o, cfg, mk)
		if err != nil {
			return nil, err
		}
		r.keyName, r.keyKDF = kf.name, kf.params()
		return r, nil
	}
	if len(damaged) > 0 {
		lastErr = errors.Join(lastErr, fmt.Errorf("%d damaged key files were skipped (%s)", len(damaged), shortNames(damaged)))
	}
	if lastErr != nil {
		return nil, fmt.Errorf("open repository at %s: %w (%w)", be.Location(), ErrWrongPassword, lastErr)
	}
	return nil, fmt.Errorf("open repository at %s: %w", be.Location(), ErrWrongPassword)
}

func newRepository(be Backend, o OpenOptions, cfg config, mk *masterKey) (*Repository, error) {
	c, err := newCrypter(mk.Encryption, o.Rand)
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(o.CompressionLevel), zstd.WithEncoderConcurrency(o.Concurrency),
		zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(o.Concurrency), zstd.WithDecoderMaxMemory(maxChunkLimit+1<<20))
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	r := &Repository{
		be: be, opts: o, cfg: cfg, key: mk, crypt: c,
		chunk: newChunker(cfg.Chunker, mk.ChunkerSeed),
		enc:   enc, dec: dec,
		idx:     newIndex(),
		idxSeen: map[string]bool{},
	}
	r.trees = newTreeCache(r, 64<<20)
	return r, nil
}

// ID returns the repository's random identifier (stable across passwords).
func (r *Repository) ID() string { return r.cfg.ID }

// Location describes the backend.
func (r *Repository) Location() string { return r.be.Location() }

// Close releases the zstd workers; the backend is left open (the caller
// owns it).
func (r *Repository) Close() error {
	r.dec.Close()
	return r.enc.Close()
}
