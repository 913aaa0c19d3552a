// Package backendtest is the conformance suite every repository.Backend
// passes: the in-memory one, the local directory and S3 (against a real MinIO).
//
// A backend test calls Run with a constructor that returns a fresh, empty
// backend for each subtest:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) repository.Backend {
//			b, err := local.Create(t.TempDir())
//			...
//			return b
//		})
//	}
//
// The suite pins down the parts of the Backend contract that callers rely on
// but the interface cannot express: ranged loads and their bounds, ErrNotExist
// wrapping, overwrite of config and lock files, atomicity under cancellation,
// completeness of List, and safety under concurrent use.
//
// Naming convention the suite assumes: config objects are named "config"
// (backends keep config objects at the repository root under their name);
// every other object is named by a lowercase hex id, as the repository does.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/repository"
)

// AllTypes lists every FileType a backend must store.
var AllTypes = []repository.FileType{
	repository.ConfigFile,
	repository.KeyFile,
	repository.PackFile,
	repository.IndexFile,
	repository.SnapshotFile,
	repository.LockFile,
}

// Option adjusts the suite for one backend.
type Option func(*options)

type options struct {
	secrets    []string
	listMany   int
	largeBytes int
}

// ForbidInLocation makes the suite fail if Location() contains any of the
// given strings (pass the credentials the backend was built with).
func ForbidInLocation(secrets ...string) Option {
	return func(o *options) {
		for _, s := range secrets {
			if s != "" {
				o.secrets = append(o.secrets, s)
			}
		}
	}
}

// Run runs the conformance suite. newBackend must return a new, empty backend
// each time it is called; the suite closes it.
func Run(t *testing.T, newBackend func(t *testing.T) repository.Backend, opts ...Option) {
	o := options{listMany: 1050, largeBytes: 40 << 20}
	for _, f := range opts {
		f(&o)
	}
	open := func(t *testing.T) repository.Backend {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	}

	t.Run("SaveLoadStatListRemove", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("RangedLoad", func(t *testing.T) { testRangedLoad(t, open(t)) })
	t.Run("NotExist", func(t *testing.T) { testNotExist(t, open(t)) })
	t.Run("RemoveAbsent", func(t *testing.T) { testRemoveAbsent(t, open(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, open(t)) })
	t.Run("EmptyObject", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("EmptyName", func(t *testing.T) { testEmptyName(t, open(t)) })
	t.Run("TypesAreSeparate", func(t *testing.T) { testTypesSeparate(t, open(t)) })
	t.Run("LargeObject", func(t *testing.T) { testLarge(t, open(t), o.largeBytes) })
	t.Run("ListComplete", func(t *testing.T) { testListMany(t, open(t), o.listMany) })
	t.Run("ListStopsOnError", func(t *testing.T) { testListError(t, open(t)) })
	t.Run("ListCallbackMayUseBackend", func(t *testing.T) { testListReentrant(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("ContextCancelled", func(t *testing.T) { testCancelled(t, open(t)) })
	t.Run("Location", func(t *testing.T) { testLocation(t, open(t), o.secrets) })
}

// ID returns a deterministic 64-hex-digit name, like a repository object id.
func ID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// Data returns n deterministic pseudo-random bytes.
func Data(seed string, n int) []byte {
	sum := sha256.Sum256([]byte(seed))
	var s [32]byte
	copy(s[:], sum[:])
	r := rand.NewChaCha8(s)
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// nameFor returns a valid name of type ft: "config" for config objects (the
// one name the repository uses for them), a hex id otherwise.
func nameFor(ft repository.FileType, seed string) string {
	if ft == repository.ConfigFile {
		return "config"
	}
	return ID(seed)
}

func mustSave(t *testing.T, b repository.Backend, h repository.Handle, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), h, data); err != nil {
		t.Fatalf("Save %s/%s (%d bytes): %v", h.Type, h.Name, len(data), err)
	}
}

func mustLoad(t *testing.T, b repository.Backend, h repository.Handle, off, n int64) []byte {
	t.Helper()
	got, err := b.Load(context.Background(), h, off, n)
	if err != nil {
		t.Fatalf("Load %s/%s offset %d length %d: %v", h.Type, h.Name, off, n, err)
	}
	return got
}

// listNames returns the sorted names List reports for ft, failing the test on
// error, and checks the sizes List reports against sizes (if non-nil).
func listNames(t *testing.T, b repository.Backend, ft repository.FileType) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	var mu sync.Mutex // the contract does not promise fn is called from one goroutine
	err := b.List(context.Background(), ft, func(fi repository.FileInfo) error {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[fi.Name]; dup {
			return fmt.Errorf("listing reported %q twice", fi.Name)
		}
		got[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List %s: %v", ft, err)
	}
	return got
}

func testRoundTrip(t *testing.T, b repository.Backend) {
	ctx := context.Background()
	for i, ft := range AllTypes {
		t.Run(string(ft), func(t *testing.T) {
			h := repository.Handle{Type: ft, Name: nameFor(ft, fmt.Sprint("roundtrip", i))}
			data := Data(h.Name, 1000+i*517)
			mustSave(t, b, h, data)

			if got := mustLoad(t, b, h, 0, 0); !bytes.Equal(got, data) {
				t.Fatalf("Load returned %d bytes that differ from the %d saved", len(got), len(data))
			}
			fi, err := b.Stat(ctx, h)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if fi.Size != int64(len(data)) || fi.Name != h.Name {
				t.Fatalf("Stat = %+v, want name %q size %d", fi, h.Name, len(data))
			}
			names := listNames(t, b, ft)
			if len(names) != 1 || names[h.Name] != int64(len(data)) {
				t.Fatalf("List %s = %v, want exactly {%s: %d}", ft, names, h.Name, len(data))
			}

			if err := b.Remove(ctx, h); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, err := b.Stat(ctx, h); !errors.Is(err, repository.ErrNotExist) {
				t.Fatalf("Stat after Remove: err = %v, want ErrNotExist", err)
			}
			if names := listNames(t, b, ft); len(names) != 0 {
				t.Fatalf("List after Remove = %v, want empty", names)
			}
		})
	}
}

func testRangedLoad(t *testing.T, b repository.Backend) {
	ctx := context.Background()
	h := repository.Handle{Type: repository.PackFile, Name: ID("ranged")}
	const size = 100_000
	data := Data("ranged", size)
	mustSave(t, b, h, data)

	ok := []struct {
		name        string
		off, length int64
	}{
		{"whole", 0, 0},
		{"whole explicit length", 0, size},
		{"prefix", 0, 10},
		{"middle", 12345, 4567},
		{"suffix explicit", size - 100, 100},
		{"offset to end", 99_000, 0},
		{"last byte", size - 1, 1},
		{"last byte to end", size - 1, 0},
		{"one byte", 500, 1},
		{"offset at end is empty", size, 0},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			got := mustLoad(t, b, h, c.off, c.length)
			end := int64(size)
			if c.length > 0 {
				end = c.off + c.length
			}
			if want := data[c.off:end]; !bytes.Equal(got, want) {
				t.Fatalf("Load(%d, %d) returned %d bytes, want the %d bytes at [%d:%d]", c.off, c.length, len(got), len(want), c.off, end)
			}
		})
	}

	bad := []struct {
		name        string
		off, length int64
	}{
		{"offset past end", size + 1, 0},
		{"offset far past end", size * 10, 10},
		{"range past end", size - 10, 11},
		{"range starting at end", size, 1},
		{"negative offset", -1, 10},
		{"negative length", 10, -1},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			got, err := b.Load(ctx, h, c.off, c.length)
			if err == nil {
				t.Fatalf("Load(%d, %d) of a %d-byte object returned %d bytes and no error", c.off, c.length, size, len(got))
			}
			if errors.Is(err, repository.ErrNotExist) {
				t.Fatalf("Load(%d, %d): out-of-range error must not be ErrNotExist (the object exists): %v", c.off, c.length, err)
			}
		})
	}
}

func testNotExist(t *testing.T, b repository.Backend) {
	ctx := context.Background()
	for _, ft := range AllTypes {
		t.Run(string(ft), func(t *testing.T) {
			h := repository.Handle{Type: ft, Name: nameFor(ft, "absent")}
			if _, err := b.Load(ctx, h, 0, 0); !errors.Is(err, repository.ErrNotExist) {
				t.Errorf("Load of absent object: err = %v, want errors.Is ErrNotExist", err)
			}
			if _, err := b.Load(ctx, h, 10, 5); !errors.Is(err, repository.ErrNotExist) {
				t.Errorf("ranged Load of absent object: err = %v, want errors.Is ErrNotExist", err)
			}
			if _, err := b.Stat(ctx, h); !errors.Is(err, repository.ErrNotExist) {
				t.Errorf("Stat of absent object: err = %v, want errors.Is ErrNotExist", err)
			}
			if err := b.List(ctx, ft, func(fi repository.FileInfo) error {
				return fmt.Errorf("listing an empty backend reported %+v", fi)
			}); err != nil {
				t.Errorf("List of empty type: %v", err)
			}
		})
	}
	// The error should say which object; callers surface it to users.
	h := repository.Handle{Type: repository.PackFile, Name: ID("absent-named")}
	_, err := b.Load(ctx, h, 0, 0)
	if err == nil || !strings.Contains(err.Error(), h.Name) {
		t.Errorf("Load error %q does not name the missing object %s", err, h.Name)
	}
}

func testRemoveAbsent(t *testing.T, b repository.Backend) {
	for _, ft := range AllTypes {
		h := repository.Handle{Type: ft, Name: nameFor(ft, "never-saved")}
		if err := b.Remove(context.Background(), h); err != nil {
			t.Errorf("Remove of absent %s: %v", ft, err)
		}
	}
	// Removing twice is also fine.
	h := repository.Handle{Type: repository.LockFile, Name: ID("twice")}
	mustSave(t, b, h, []byte("lock"))
	for i := range 2 {
		if err := b.Remove(context.Background(), h); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
}

func testOverwrite(t *testing.T, b repository.Backend) {
	for _, ft := range []repository.FileType{repository.ConfigFile, repository.LockFile, repository.KeyFile} {
		t.Run(string(ft), func(t *testing.T) {
			h := repository.Handle{Type: ft, Name: nameFor(ft, "overwrite")}
			first := Data("first", 5000)
			second := Data("second", 1234) // shorter: a stale tail must not survive
			mustSave(t, b, h, first)
			mustSave(t, b, h, second)
			if got := mustLoad(t, b, h, 0, 0); !bytes.Equal(got, second) {
				t.Fatalf("after overwrite Load returned %d bytes, want the second save's %d", len(got), len(second))
			}
			fi, err := b.Stat(context.Background(), h)
			if err != nil || fi.Size != int64(len(second)) {
				t.Fatalf("Stat after overwrite = %+v, %v; want size %d", fi, err, len(second))
			}
			if names := listNames(t, b, ft); len(names) != 1 || names[h.Name] != int64(len(second)) {
				t.Fatalf("List after overwrite = %v, want exactly {%s: %d}", names, h.Name, len(second))
			}
		})
	}
}

func testEmpty(t *testing.T, b repository.Backend) {
	for _, ft := range AllTypes {
		t.Run(string(ft), func(t *testing.T) {
			h := repository.Handle{Type: ft, Name: nameFor(ft, "empty")}
			mustSave(t, b, h, nil)
			if got := mustLoad(t, b, h, 0, 0); len(got) != 0 {
				t.Fatalf("Load of empty object returned %d bytes", len(got))
			}
			fi, err := b.Stat(context.Background(), h)
			if err != nil || fi.Size != 0 {
				t.Fatalf("Stat of empty object = %+v, %v", fi, err)
			}
			if names := listNames(t, b, ft); len(names) != 1 || names[h.Name] != 0 {
				t.Fatalf("List = %v, want {%s: 0}", names, h.Name)
			}
			if _, err := b.Load(context.Background(), h, 0, 1); err == nil {
				t.Fatal("Load(0, 1) of an empty object succeeded")
			}
		})
	}
}

func testEmptyName(t *testing.T, b repository.Backend) {
	for _, ft := range AllTypes {
		if err := b.Save(context.Background(), repository.Handle{Type: ft}, []byte("x")); err == nil {
			t.Errorf("Save of %s with an empty name succeeded; want an error", ft)
		}
	}
}

func testTypesSeparate(t *testing.T, b repository.Backend) {
	// The same name under every type (config excepted: it has one name) are
	// distinct objects.
	name := ID("shared-name")
	types := AllTypes[1:]
	for i, ft := range types {
		mustSave(t, b, repository.Handle{Type: ft, Name: name}, Data(fmt.Sprint(i), 100+i))
	}
	mustSave(t, b, repository.Handle{Type: repository.ConfigFile, Name: "config"}, []byte("cfg"))
	for i, ft := range types {
		got := mustLoad(t, b, repository.Handle{Type: ft, Name: name}, 0, 0)
		if !bytes.Equal(got, Data(fmt.Sprint(i), 100+i)) {
			t.Errorf("%s/%s holds another type's content", ft, name)
		}
		if names := listNames(t, b, ft); len(names) != 1 || names[name] != int64(100+i) {
			t.Errorf("List %s = %v, want only {%s: %d}", ft, names, name, 100+i)
		}
	}
	if names := listNames(t, b, repository.ConfigFile); len(names) != 1 || names["config"] != 3 {
		t.Errorf("List config = %v, want only {config: 3}", names)
	}
	if err := b.Remove(context.Background(), repository.Handle{Type: repository.IndexFile, Name: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(context.Background(), repository.Handle{Type: repository.SnapshotFile, Name: name}); err != nil {
		t.Errorf("removing index/%s removed snapshots/%s too: %v", name, name, err)
	}
}

func testLarge(t *testing.T, b repository.Backend, n int) {
	h := repository.Handle{Type: repository.PackFile, Name: ID("large")}
	data := Data("large", n)
	mustSave(t, b, h, data)
	got := mustLoad(t, b, h, 0, 0)
	if !bytes.Equal(got, data) {
		t.Fatalf("Load of %d-byte object returned %d bytes that differ", n, len(got))
	}
	// Packs are read by header at the end and by blob in the middle.
	tail := mustLoad(t, b, h, int64(n-4096), 4096)
	if !bytes.Equal(tail, data[n-4096:]) {
		t.Fatal("ranged Load of the last 4 KiB differs")
	}
	mid := mustLoad(t, b, h, int64(n/2), 1<<20)
	if !bytes.Equal(mid, data[n/2:n/2+1<<20]) {
		t.Fatal("ranged Load of 1 MiB in the middle differs")
	}
	fi, err := b.Stat(context.Background(), h)
	if err != nil || fi.Size != int64(n) {
		t.Fatalf("Stat = %+v, %v; want size %d", fi, err, n)
	}
}

func testListMany(t *testing.T, b repository.Backend, n int) {
	// More objects than one S3 list page (1000), spread over every data
	// prefix directory, saved concurrently.
	want := map[repository.FileType]map[string]int64{
		repository.PackFile:     {},
		repository.SnapshotFile: {},
	}
	for i := range n {
		ft := repository.PackFile
		if i%10 == 0 {
			ft = repository.SnapshotFile
		}
		want[ft][ID(fmt.Sprint("many", i))] = int64(i % 97)
	}
	saveAll(t, b, want)
	for ft, names := range want {
		got := listNames(t, b, ft)
		if len(got) != len(names) {
			t.Errorf("List %s reported %d objects, want %d", ft, len(got), len(names))
		}
		for name, size := range names {
			if s, ok := got[name]; !ok {
				t.Errorf("List %s is missing %s", ft, name)
			} else if s != size {
				t.Errorf("List %s reports %s with size %d, want %d", ft, name, s, size)
			}
		}
	}
}

// saveAll saves every object in want (data = size bytes of zeroes) with a few
// goroutines.
func saveAll(t *testing.T, b repository.Backend, want map[repository.FileType]map[string]int64) {
	t.Helper()
	type job struct {
		h    repository.Handle
		size int64
	}
	jobs := make(chan job)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				if err := b.Save(context.Background(), j.h, make([]byte, j.size)); err != nil {
					select {
					case errs <- fmt.Errorf("save %s/%s: %w", j.h.Type, j.h.Name, err):
					default:
					}
				}
			}
		})
	}
	for ft, names := range want {
		for name, size := range names {
			jobs <- job{repository.Handle{Type: ft, Name: name}, size}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func testListError(t *testing.T, b repository.Backend) {
	want := map[repository.FileType]map[string]int64{repository.IndexFile: {}}
	for i := range 20 {
		want[repository.IndexFile][ID(fmt.Sprint("stop", i))] = 10
	}
	saveAll(t, b, want)
	stop := errors.New("stop here")
	calls := 0
	err := b.List(context.Background(), repository.IndexFile, func(repository.FileInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List returned %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Fatalf("List called fn %d times after it returned an error, want 1", calls)
	}
}

func testListReentrant(t *testing.T, b repository.Backend) {
	// Callers load or remove objects while listing (prune does); this must
	// not deadlock or skip objects.
	want := map[repository.FileType]map[string]int64{repository.LockFile: {}}
	for i := range 30 {
		want[repository.LockFile][ID(fmt.Sprint("reentrant", i))] = 64
	}
	saveAll(t, b, want)
	seen := 0
	err := b.List(context.Background(), repository.LockFile, func(fi repository.FileInfo) error {
		seen++
		h := repository.Handle{Type: repository.LockFile, Name: fi.Name}
		if _, err := b.Load(context.Background(), h, 0, 0); err != nil {
			return err
		}
		return b.Remove(context.Background(), h)
	})
	if err != nil {
		t.Fatalf("List with a callback that loads and removes: %v", err)
	}
	if seen != 30 {
		t.Fatalf("List visited %d objects, want 30", seen)
	}
	if names := listNames(t, b, repository.LockFile); len(names) != 0 {
		t.Fatalf("%d lock files left after removing all while listing", len(names))
	}
}

func testConcurrent(t *testing.T, b repository.Backend) {
	const workers, perWorker, overwriters = 16, 6, 4
	var wg sync.WaitGroup
	// Every goroutine sends at most one error; room for all of them, so a
	// backend that fails everything cannot deadlock the suite.
	errs := make(chan error, workers+overwriters)
	for w := range workers {
		wg.Go(func() {
			ft := AllTypes[1+w%(len(AllTypes)-1)]
			for i := range perWorker {
				seed := fmt.Sprint("concurrent", w, i)
				h := repository.Handle{Type: ft, Name: ID(seed)}
				data := Data(seed, 1000+w*100+i*3000)
				if err := b.Save(context.Background(), h, data); err != nil {
					errs <- fmt.Errorf("worker %d: Save %s: %w", w, h.Name, err)
					return
				}
				got, err := b.Load(context.Background(), h, 0, 0)
				if err != nil {
					errs <- fmt.Errorf("worker %d: Load %s: %w", w, h.Name, err)
					return
				}
				if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("worker %d: Load %s returned other content", w, h.Name)
					return
				}
			}
		})
	}
	// Concurrent overwrites of one lock file: every read sees one whole
	// version, never a mix or a torn write.
	versions := [][]byte{Data("v0", 20000), Data("v1", 30000), Data("v2", 10000)}
	lock := repository.Handle{Type: repository.LockFile, Name: ID("contended")}
	mustSave(t, b, lock, versions[0])
	for w := range overwriters {
		wg.Go(func() {
			for i := range 8 {
				v := versions[(w+i)%len(versions)]
				if err := b.Save(context.Background(), lock, v); err != nil {
					errs <- fmt.Errorf("overwriter %d: %w", w, err)
					return
				}
				got, err := b.Load(context.Background(), lock, 0, 0)
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", w, err)
					return
				}
				if !slicesContain(versions, got) {
					errs <- fmt.Errorf("reader %d saw a torn lock file of %d bytes", w, len(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, ft := range AllTypes[1:] {
		total += len(listNames(t, b, ft))
	}
	if want := workers*perWorker + 1; total != want {
		t.Errorf("after concurrent saves List reports %d objects, want %d", total, want)
	}
}

func slicesContain(vs [][]byte, b []byte) bool {
	for _, v := range vs {
		if bytes.Equal(v, b) {
			return true
		}
	}
	return false
}

func testCancelled(t *testing.T, b repository.Backend) {
	h := repository.Handle{Type: repository.PackFile, Name: ID("present")}
	mustSave(t, b, h, Data("present", 1000))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want errors.Is context.Canceled", op, err)
		}
	}
	absent := repository.Handle{Type: repository.PackFile, Name: ID("cancelled-save")}
	check("Save", b.Save(ctx, absent, Data("x", 4<<20)))
	_, err := b.Load(ctx, h, 0, 0)
	check("Load", err)
	_, err = b.Stat(ctx, h)
	check("Stat", err)
	check("List", b.List(ctx, repository.PackFile, func(repository.FileInfo) error { return nil }))
	check("Remove", b.Remove(ctx, h))

	// A cancelled Save stores nothing, and a cancelled Remove removes nothing.
	if _, err := b.Stat(context.Background(), absent); !errors.Is(err, repository.ErrNotExist) {
		t.Errorf("a Save with a cancelled context left an object behind (Stat: %v)", err)
	}
	if _, err := b.Stat(context.Background(), h); err != nil {
		t.Errorf("a Remove with a cancelled context removed the object (Stat: %v)", err)
	}
	if names := listNames(t, b, repository.PackFile); len(names) != 1 {
		t.Errorf("List after cancelled operations = %v, want only %s", names, h.Name)
	}

	// Cancelling during a List stops it.
	want := map[repository.FileType]map[string]int64{repository.SnapshotFile: {}}
	for i := range 50 {
		want[repository.SnapshotFile][ID(fmt.Sprint("cancel-list", i))] = 1
	}
	saveAll(t, b, want)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err = b.List(ctx, repository.SnapshotFile, func(repository.FileInfo) error {
		calls++
		cancel()
		return nil
	})
	check("List cancelled in its callback", err)
	if calls > 1 {
		// Tolerated: some backends deliver what they already fetched. But it
		// must not keep going through everything.
		if calls >= 50 {
			t.Errorf("List kept calling fn (%d times) after the context was cancelled", calls)
		}
	}
}

// userinfoInURL matches credentials embedded in a URL (scheme://user:pass@host).
var userinfoInURL = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s]+:[^/@\s]*@`)

func testLocation(t *testing.T, b repository.Backend, secrets []string) {
	loc := b.Location()
	if strings.TrimSpace(loc) == "" {
		t.Fatal("Location() is empty; it should say where the repository is")
	}
	if userinfoInURL.MatchString(loc) {
		t.Errorf("Location() %q contains URL credentials", loc)
	}
	for _, s := range secrets {
		if strings.Contains(loc, s) {
			t.Errorf("Location() %q contains a secret the backend was configured with", loc)
		}
	}
	// Errors also reach logs; they must not carry secrets either.
	_, err := b.Load(context.Background(), repository.Handle{Type: repository.PackFile, Name: ID("nope")}, 0, 0)
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("an error message contains a secret the backend was configured with: %v", err)
		}
	}
}

// SortedNames is a helper for backend tests: the names from List, sorted.
func SortedNames(t *testing.T, b repository.Backend, ft repository.FileType) []string {
	t.Helper()
	m := listNames(t, b, ft)
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
