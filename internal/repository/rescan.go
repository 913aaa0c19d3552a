package repository

import (
	"context"
	"fmt"
	"io"
	"os"
)

// scanFetchers is how many segments of one file readFixedScan reads (and
// hashes) at once, and scanSegment the bytes of one read. One synchronous
// 256 KiB read at a time left the benchmark VM's disk idle between
// requests and cost the kernel 0.3 s of CPU per 768 MiB under O_DIRECT;
// 1 MiB requests (one preadv into the blocks' own buffers), two or more in
// flight, cost 0.1 s and stream faster. Several fetchers also spread the
// hashing over the cores.
const (
	scanFetchers = 3
	scanSegment  = 1 << 20
)

// scanTask is one segment (a few consecutive blocks) of a readFixedScan:
// a fetcher fills it and signals done, the consumer takes the results in
// file order.
type scanTask struct {
	b, lo int64 // first block, its offset
	want  []int // expected length of each block
	hole  bool  // wholly inside a hole of a sparse file: not read

	bufs    []*[]byte
	n       []int      // bytes read per block
	fast    [][16]byte // fast hash per block (zero for zeros)
	zero    []bool     // all zeros
	matched []bool     // equal to the parent's block at this offset
	err     error
	done    chan struct{}
}

func (t *scanTask) release(p *bufPools) {
	for i, b := range t.bufs {
		if b != nil {
			p.put(b)
			t.bufs[i] = nil
		}
	}
}

// readFixedScan chunks a file in fixed blocks when there are no
// changed-range hints. It keeps several block reads in flight (large
// sequential O_DIRECT reads where the filesystem allows), and the fetchers
// compute each block's fast hash (blockhash.go), recorded in the file's
// tree entry. When the file has a comparable parent (job.base: same block
// size, all blobs indexed), a block equal to the parent's block at the same
// offset (same length and fast hash; or same keyed content id when the
// parent has no fast hashes or SecureBlockCompare is set) is taken from
// the parent as it is: it never reaches the chunk workers (no content id,
// index lookup, compression or encryption). Only the changed blocks go on
// to be stored. Reading the whole file is unavoidable without hints; what
// this saves is the idle disk between reads and all work after it.
func (s *backupSession) readFixedScan(ctx context.Context, job *fileJob, f *os.File, size int64) error {
	// Two files at a time: the disk is saturated anyway, and memory stays
	// bounded however many large files there are.
	select {
	case s.scans <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.scans }()
	bs := int64(s.blockSize)
	nblocks := (size + bs - 1) / bs
	ext, sparseOK := dataExtents(f, size)
	ei := 0
	inHole := func(lo, hi int64) bool {
		if !sparseOK {
			return false
		}
		for ei < len(ext) && ext[ei].Offset+ext[ei].Length <= lo {
			ei++
		}
		return ei >= len(ext) || ext[ei].Offset >= hi
	}
	direct := openDirect(job.abs)
	defer direct.Close()
	hasher := newBlockHasher(s.r)

	per := max(1, scanSegment/bs) // blocks per segment
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tasks := make(chan *scanTask)
	// ordered holds every segment in file order; its capacity bounds the
	// segments read ahead of the consumer (and so the buffers held).
	ordered := make(chan *scanTask, 2*scanFetchers)
	go func() {
		defer close(ordered)
		defer close(tasks)
		for b := int64(0); b < nblocks; b += per {
			lo := b * bs
			k := min(per, nblocks-b)
			t := &scanTask{b: b, lo: lo, want: make([]int, k), done: make(chan struct{})}
			for i := range t.want {
				t.want[i] = int(min(bs, size-lo-int64(i)*bs))
			}
			if inHole(lo, min(lo+k*bs, size)) {
				t.hole = true
				close(t.done)
			} else {
				select {
				case tasks <- t:
				case <-sctx.Done():
					return
				}
			}
			select {
			case ordered <- t:
			case <-sctx.Done():
				<-t.done
				t.release(s.bufs)
				return
			}
		}
	}()
	for range scanFetchers {
		go func() {
			w := s.r.newBlobWorker()
			for t := range tasks {
				s.fetchSegment(job, f, direct, w, hasher, t)
				close(t.done)
			}
		}()
	}

	var ferr error
	stop := false
	fast := make([][16]byte, 0, nblocks) // by content piece, as reserved
	for t := range ordered {
		<-t.done
		if !stop {
			stop, ferr = s.takeSegment(ctx, job, t, &fast)
		}
		t.release(s.bufs)
		if stop {
			cancel()
		}
	}
	if ferr == nil && len(fast) > 0 {
		job.st.node.FastHash = fast
	}
	return ferr
}

// takeSegment records the blocks of segment t in the file's content, in
// order, and hands the changed ones to the chunk workers. stop is true at
// an error or when the file ended early (it shrank while being read: what
// is there is stored, as readFixed does).
func (s *backupSession) takeSegment(ctx context.Context, job *fileJob, t *scanTask, fast *[][16]byte) (stop bool, err error) {
	if t.err != nil {
		return true, t.err
	}
	for i, want := range t.want {
		b := t.b + int64(i)
		n := want
		if !t.hole {
			n = t.n[i]
		}
		switch {
		case n == 0:
			return true, nil
		case t.hole || t.zero[i]:
			job.st.reserve(contentRef{Length: uint32(n)})
			*fast = append(*fast, [16]byte{})
		case t.matched[i]:
			job.st.reserve(job.base.Content[b])
			*fast = append(*fast, t.fast[i])
			s.blocksReused.Add(1)
		default:
			*fast = append(*fast, t.fast[i])
			buf := t.bufs[i]
			t.bufs[i] = nil // the chunk worker returns it
			if err := s.emit(ctx, job.st, buf, n); err != nil {
				return true, err
			}
		}
		if n < want {
			return true, nil
		}
	}
	return false, nil
}

// fetchSegment reads segment t into one buffer per block, then computes
// each block's fast hash and compares it with job.base's block at the same
// offset.
func (s *backupSession) fetchSegment(job *fileJob, f *os.File, direct *directReader, w *blobWorker, h blockHasher, t *scanTask) {
	k := len(t.want)
	t.bufs, t.n = make([]*[]byte, k), make([]int, k)
	t.fast, t.zero, t.matched = make([][16]byte, k), make([]bool, k), make([]bool, k)
	views := make([][]byte, k)
	for i, want := range t.want {
		t.bufs[i] = s.bufs.get(want)
		views[i] = (*t.bufs[i])[:want]
	}
	// One large read; whatever it did not cover (no O_DIRECT, a short
	// read) is read block by block.
	got, _ := direct.readvAt(views, t.lo)
	var total int64
	for i, want := range t.want {
		off := t.lo + int64(i)*int64(s.blockSize)
		if got >= want {
			t.n[i], got = want, got-want
		} else {
			got = 0
			m, ok := direct.readAt(views[i], off)
			var err error
			if !ok {
				m, err = f.ReadAt(views[i], off)
			}
			if err == io.EOF {
				err = nil // file shrank: store what is there
			}
			if err != nil {
				t.release(s.bufs)
				t.err = fmt.Errorf("backup: read %s at %d: %w", job.abs, off, err)
				return
			}
			t.n[i] = m
		}
		total += int64(t.n[i])
		if t.n[i] < want {
			break // end of file: later blocks stay empty
		}
	}
	s.bytesRead.Add(total)
	base := job.base
	for i, n := range t.n {
		data := views[i][:n]
		if n == 0 {
			break
		}
		if t.zero[i] = isZero(data); t.zero[i] {
			continue
		}
		t.fast[i] = h.sum(data)
		b := t.b + int64(i)
		if base == nil || b >= int64(len(base.Content)) {
			continue
		}
		pc := base.Content[b]
		if int(pc.Length) != n || pc.ID.IsZero() {
			continue
		}
		if len(base.FastHash) == len(base.Content) && !s.o.SecureBlockCompare {
			t.matched[i] = base.FastHash[b] == t.fast[i]
		} else {
			t.matched[i] = w.id(dataBlob, data) == pc.ID
		}
	}
}
