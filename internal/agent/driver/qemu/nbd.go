package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// nbdClient is a minimal NBD client (fixed newstyle handshake, structured
// replies, one request at a time) for reading QEMU's export of a backup
// view: NBD_CMD_READ and NBD_CMD_BLOCK_STATUS with one meta context
// (qemu:dirty-bitmap:<name>). No NBD module for Go is served here, and
// this subset is small. See https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md.
type nbdClient struct {
	mu     sync.Mutex
	conn   net.Conn
	size   int64
	ctxID  uint32 // the negotiated meta context, if asked for
	hasCtx bool
	cookie uint64
}

const (
	nbdMagic          = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic       = 0x49484156454f5054 // "IHAVEOPT"
	nbdRepMagic       = 0x0003e889045565a9
	nbdReqMagic       = 0x25609513
	nbdSimpleMagic    = 0x67446698
	nbdStructMagic    = 0x668e33ef
	nbdFlagFixed      = 1
	nbdFlagNoZeroes   = 2
	nbdOptAbort       = 2
	nbdOptGo          = 7
	nbdOptStructured  = 8
	nbdOptSetMetaCtx  = 10
	nbdRepAck         = 1
	nbdRepInfo        = 3
	nbdRepMetaContext = 4
	nbdRepErrBit      = 1 << 31
	nbdInfoExport     = 0
	nbdCmdRead        = 0
	nbdCmdDisc        = 2
	nbdCmdBlockStatus = 7
	nbdReplyFlagDone  = 1
	nbdReplyNone      = 0
	nbdReplyData      = 1
	nbdReplyHole      = 2
	nbdReplyBlockStat = 5
	nbdReplyErrBit    = 1 << 15
	// nbdMaxRequest bounds one read or status request (QEMU accepts 32 MiB).
	nbdMaxRequest = 4 << 20
)

// dialNBD connects to a Unix socket and opens export name; metaContext,
// if not empty, is negotiated for BlockStatus.
func dialNBD(conn net.Conn, export, metaContext string) (*nbdClient, error) {
	c := &nbdClient{conn: conn}
	if err := c.handshake(export, metaContext); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("NBD handshake for export %q: %w", export, err)
	}
	return c, nil
}

func (c *nbdClient) handshake(export, metaContext string) error {
	var hdr [18]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint64(hdr[0:]) != nbdMagic || binary.BigEndian.Uint64(hdr[8:]) != nbdOptMagic {
		return errors.New("not a newstyle NBD server")
	}
	flags := binary.BigEndian.Uint16(hdr[16:])
	if flags&nbdFlagFixed == 0 || flags&nbdFlagNoZeroes == 0 {
		return fmt.Errorf("server handshake flags %#x lack fixed newstyle or no-zeroes", flags)
	}
	if err := binary.Write(c.conn, binary.BigEndian, uint32(nbdFlagFixed|nbdFlagNoZeroes)); err != nil {
		return err
	}
	if err := c.option(nbdOptStructured, nil); err != nil {
		return err
	}
	if typ, _, err := c.optReply(nbdOptStructured); err != nil {
		return err
	} else if typ != nbdRepAck {
		return fmt.Errorf("structured replies: reply type %d", typ)
	}
	if metaContext != "" {
		var b bytes.Buffer
		putString(&b, export)
		_ = binary.Write(&b, binary.BigEndian, uint32(1))
		putString(&b, metaContext)
		if err := c.option(nbdOptSetMetaCtx, b.Bytes()); err != nil {
			return err
		}
		for {
			typ, data, err := c.optReply(nbdOptSetMetaCtx)
			if err != nil {
				return err
			}
			if typ == nbdRepAck {
				break
			}
			if typ == nbdRepMetaContext && len(data) >= 4 && string(data[4:]) == metaContext {
				c.ctxID, c.hasCtx = binary.BigEndian.Uint32(data), true
			}
		}
		if !c.hasCtx {
			return fmt.Errorf("the server does not offer meta context %q", metaContext)
		}
	}
	var b bytes.Buffer
	putString(&b, export)
	_ = binary.Write(&b, binary.BigEndian, uint16(0)) // no extra info requests
	if err := c.option(nbdOptGo, b.Bytes()); err != nil {
		return err
	}
	for {
		typ, data, err := c.optReply(nbdOptGo)
		if err != nil {
			return err
		}
		if typ == nbdRepAck {
			break
		}
		if typ == nbdRepInfo && len(data) >= 12 && binary.BigEndian.Uint16(data) == nbdInfoExport {
			c.size = int64(binary.BigEndian.Uint64(data[2:])) //nolint:gosec // G115: a size past int64 turns negative and is refused below
		}
	}
	if c.size <= 0 {
		return errors.New("the server named no export size")
	}
	return nil
}

func putString(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s))) //nolint:gosec // G115: export and context names are short
	b.WriteString(s)
}

func (c *nbdClient) option(opt uint32, data []byte) error {
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[0:], nbdOptMagic)
	binary.BigEndian.PutUint32(hdr[8:], opt)
	binary.BigEndian.PutUint32(hdr[12:], uint32(len(data))) //nolint:gosec // G115: option data is short
	_, err := c.conn.Write(append(hdr[:], data...))
	return err
}

// optReply reads one option reply; an error reply becomes an error.
func (c *nbdClient) optReply(opt uint32) (uint32, []byte, error) {
	var hdr [20]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return 0, nil, err
	}
	if binary.BigEndian.Uint64(hdr[0:]) != nbdRepMagic {
		return 0, nil, errors.New("bad option reply magic")
	}
	if got := binary.BigEndian.Uint32(hdr[8:]); got != opt {
		return 0, nil, fmt.Errorf("reply to option %d while %d was asked", got, opt)
	}
	typ, n := binary.BigEndian.Uint32(hdr[12:]), binary.BigEndian.Uint32(hdr[16:])
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("option reply of %d bytes", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(c.conn, data); err != nil {
		return 0, nil, err
	}
	if typ&nbdRepErrBit != 0 {
		return 0, nil, fmt.Errorf("option %d refused (error %#x): %s", opt, typ, data)
	}
	return typ, data, nil
}

func (c *nbdClient) request(cmd uint16, off int64, length uint32) (uint64, error) {
	c.cookie++
	var r [28]byte
	binary.BigEndian.PutUint32(r[0:], nbdReqMagic)
	binary.BigEndian.PutUint16(r[6:], cmd)
	binary.BigEndian.PutUint64(r[8:], c.cookie)
	binary.BigEndian.PutUint64(r[16:], uint64(off)) //nolint:gosec // G115: offsets are never negative
	binary.BigEndian.PutUint32(r[24:], length)
	_, err := c.conn.Write(r[:])
	return c.cookie, err
}

// replies reads the replies to request cookie until the last one, handing
// each structured chunk's type and payload to f.
func (c *nbdClient) replies(cookie uint64, f func(typ uint16, payload []byte) error) error {
	for {
		var m [4]byte
		if _, err := io.ReadFull(c.conn, m[:]); err != nil {
			return err
		}
		switch binary.BigEndian.Uint32(m[:]) {
		case nbdSimpleMagic:
			var r [12]byte
			if _, err := io.ReadFull(c.conn, r[:]); err != nil {
				return err
			}
			if binary.BigEndian.Uint64(r[4:]) != cookie {
				return errors.New("reply to another request")
			}
			if e := binary.BigEndian.Uint32(r[0:]); e != 0 {
				return fmt.Errorf("server error %d", e)
			}
			return nil
		case nbdStructMagic:
			var r [16]byte
			if _, err := io.ReadFull(c.conn, r[:]); err != nil {
				return err
			}
			flags, typ := binary.BigEndian.Uint16(r[0:]), binary.BigEndian.Uint16(r[2:])
			if binary.BigEndian.Uint64(r[4:]) != cookie {
				return errors.New("reply to another request")
			}
			n := binary.BigEndian.Uint32(r[12:])
			if n > nbdMaxRequest+64 {
				return fmt.Errorf("reply chunk of %d bytes", n)
			}
			payload := make([]byte, n)
			if _, err := io.ReadFull(c.conn, payload); err != nil {
				return err
			}
			if typ&nbdReplyErrBit != 0 {
				e, msg := uint32(0), ""
				if len(payload) >= 6 {
					e = binary.BigEndian.Uint32(payload)
					ml := int(binary.BigEndian.Uint16(payload[4:]))
					if 6+ml <= len(payload) {
						msg = string(payload[6 : 6+ml])
					}
				}
				return fmt.Errorf("server error %d: %s", e, msg)
			}
			if typ != nbdReplyNone {
				if err := f(typ, payload); err != nil {
					return err
				}
			}
			if flags&nbdReplyFlagDone != 0 {
				return nil
			}
		default:
			return errors.New("bad reply magic")
		}
	}
}

// ReadAt reads len(p) bytes at off (within the export).
func (c *nbdClient) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for done < len(p) {
		n := min(len(p)-done, nbdMaxRequest)
		base := off + int64(done)
		if base+int64(n) > c.size {
			return done, io.EOF
		}
		cookie, err := c.request(nbdCmdRead, base, uint32(n))
		if err != nil {
			return done, fmt.Errorf("NBD read at %d: %w", base, err)
		}
		buf := p[done : done+n]
		got := 0
		err = c.replies(cookie, func(typ uint16, pl []byte) error {
			if len(pl) < 8 {
				return errors.New("short read chunk")
			}
			o := int64(binary.BigEndian.Uint64(pl)) - base //nolint:gosec // G115: a wrapped offset is negative and refused below
			switch typ {
			case nbdReplyData:
				d := pl[8:]
				if o < 0 || o > int64(n) || int64(len(d)) > int64(n)-o { // no o+len: it could wrap
					return errors.New("read chunk outside the request")
				}
				got += copy(buf[o:], d)
			case nbdReplyHole:
				if len(pl) < 12 {
					return errors.New("short hole chunk")
				}
				l := int64(binary.BigEndian.Uint32(pl[8:]))
				if o < 0 || o > int64(n) || l > int64(n)-o {
					return errors.New("hole chunk outside the request")
				}
				clear(buf[o : o+l])
				got += int(l)
			default:
				return fmt.Errorf("unexpected reply chunk type %d to a read", typ)
			}
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("NBD read at %d: %w", base, err)
		}
		if got != n {
			return done, fmt.Errorf("NBD read at %d: %d of %d bytes returned", base, got, n)
		}
		done += n
	}
	return done, nil
}

// Extent is a byte range of a disk.
type Extent struct {
	Offset, Length int64
}

// Dirty returns the extents whose status has bit 0 set in the negotiated
// meta context (for qemu:dirty-bitmap:NAME, the dirty ones), in order and
// merged.
func (c *nbdClient) Dirty() ([]Extent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasCtx {
		return nil, errors.New("no meta context negotiated")
	}
	var out []Extent
	for off := int64(0); off < c.size; {
		n := uint32(min(c.size-off, 1<<30)) //nolint:gosec // G115: at most 1 GiB
		cookie, err := c.request(nbdCmdBlockStatus, off, n)
		if err != nil {
			return nil, fmt.Errorf("NBD block status at %d: %w", off, err)
		}
		next := off
		err = c.replies(cookie, func(typ uint16, pl []byte) error {
			if typ != nbdReplyBlockStat || len(pl) < 4 || (len(pl)-4)%8 != 0 {
				return fmt.Errorf("unexpected reply chunk type %d to block status", typ)
			}
			if binary.BigEndian.Uint32(pl) != c.ctxID {
				return nil // another context
			}
			for d := pl[4:]; len(d) >= 8; d = d[8:] {
				l, st := int64(binary.BigEndian.Uint32(d)), binary.BigEndian.Uint32(d[4:])
				if l == 0 || next+l > c.size {
					return errors.New("block status descriptor outside the export")
				}
				if st&1 != 0 {
					if k := len(out) - 1; k >= 0 && out[k].Offset+out[k].Length == next {
						out[k].Length += l
					} else {
						out = append(out, Extent{next, l})
					}
				}
				next += l
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("NBD block status at %d: %w", off, err)
		}
		if next == off {
			return nil, fmt.Errorf("NBD block status at %d: no progress", off)
		}
		off = next
	}
	return out, nil
}

// Size is the export's size in bytes.
func (c *nbdClient) Size() int64 { return c.size }

// Close ends the session politely and closes the connection.
func (c *nbdClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = c.request(nbdCmdDisc, 0, 0)
	return c.conn.Close()
}

// nbdWindow is how many reads ReadExtents keeps in flight: one at a time,
// a scattered incremental read waits a round trip per 64 KiB block.
const nbdWindow = 16

// ReadExtents reads every extent (split into requests of at most
// nbdMaxRequest), keeping up to nbdWindow requests in flight, and hands
// each request's data to f as it completes (in any order; data is reused
// after f returns).
func (c *nbdClient) ReadExtents(ext []Extent, f func(off int64, data []byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	type pending struct {
		off int64
		buf []byte
		got int
	}
	var reqs []Extent
	for _, e := range ext {
		if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length > c.size {
			return fmt.Errorf("NBD read of %d+%d outside the export (%d bytes)", e.Offset, e.Length, c.size)
		}
		for off := e.Offset; off < e.Offset+e.Length; off += nbdMaxRequest {
			reqs = append(reqs, Extent{off, min(nbdMaxRequest, e.Offset+e.Length-off)})
		}
	}
	inflight := map[uint64]*pending{}
	var free [][]byte
	next := 0
	for next < len(reqs) || len(inflight) > 0 {
		for next < len(reqs) && len(inflight) < nbdWindow {
			r := reqs[next]
			next++
			var buf []byte
			if k := len(free) - 1; k >= 0 {
				buf, free = free[k], free[:k]
			} else {
				buf = make([]byte, nbdMaxRequest)
			}
			cookie, err := c.request(nbdCmdRead, r.Offset, uint32(r.Length)) //nolint:gosec // G115: at most nbdMaxRequest
			if err != nil {
				return fmt.Errorf("NBD read at %d: %w", r.Offset, err)
			}
			inflight[cookie] = &pending{off: r.Offset, buf: buf[:r.Length]}
		}
		cookie, typ, flags, payload, err := c.chunk()
		if err != nil {
			return fmt.Errorf("NBD read: %w", err)
		}
		p := inflight[cookie]
		if p == nil {
			return errors.New("NBD read: reply to no request in flight")
		}
		if typ != nbdReplyNone {
			if len(payload) < 8 {
				return errors.New("NBD read: short read chunk")
			}
			o := int64(binary.BigEndian.Uint64(payload)) - p.off //nolint:gosec // G115: a wrapped offset is negative and refused below
			switch typ {
			case nbdReplyData:
				d := payload[8:]
				if o < 0 || o > int64(len(p.buf)) || int64(len(d)) > int64(len(p.buf))-o { // no o+len: it could wrap
					return errors.New("NBD read: chunk outside the request")
				}
				p.got += copy(p.buf[o:], d)
			case nbdReplyHole:
				if len(payload) < 12 {
					return errors.New("NBD read: short hole chunk")
				}
				l := int64(binary.BigEndian.Uint32(payload[8:]))
				if o < 0 || o > int64(len(p.buf)) || l > int64(len(p.buf))-o {
					return errors.New("NBD read: hole outside the request")
				}
				clear(p.buf[o : o+l])
				p.got += int(l)
			default:
				return fmt.Errorf("NBD read: unexpected reply chunk type %d", typ)
			}
		}
		if flags&nbdReplyFlagDone == 0 {
			continue
		}
		delete(inflight, cookie)
		if p.got != len(p.buf) {
			return fmt.Errorf("NBD read at %d: %d of %d bytes returned", p.off, p.got, len(p.buf))
		}
		if err := f(p.off, p.buf); err != nil {
			return err
		}
		free = append(free, p.buf[:cap(p.buf)])
	}
	return nil
}

// chunk reads one reply chunk of any request: a structured chunk, or a
// simple reply (an error, or a request done). Error chunks become errors.
func (c *nbdClient) chunk() (cookie uint64, typ, flags uint16, payload []byte, err error) {
	var m [4]byte
	if _, err := io.ReadFull(c.conn, m[:]); err != nil {
		return 0, 0, 0, nil, err
	}
	switch binary.BigEndian.Uint32(m[:]) {
	case nbdSimpleMagic:
		var r [12]byte
		if _, err := io.ReadFull(c.conn, r[:]); err != nil {
			return 0, 0, 0, nil, err
		}
		if e := binary.BigEndian.Uint32(r[0:]); e != 0 {
			return 0, 0, 0, nil, fmt.Errorf("server error %d", e)
		}
		return binary.BigEndian.Uint64(r[4:]), nbdReplyNone, nbdReplyFlagDone, nil, nil
	case nbdStructMagic:
		var r [16]byte
		if _, err := io.ReadFull(c.conn, r[:]); err != nil {
			return 0, 0, 0, nil, err
		}
		flags, typ := binary.BigEndian.Uint16(r[0:]), binary.BigEndian.Uint16(r[2:])
		cookie, n := binary.BigEndian.Uint64(r[4:]), binary.BigEndian.Uint32(r[12:])
		if n > nbdMaxRequest+64 {
			return 0, 0, 0, nil, fmt.Errorf("reply chunk of %d bytes", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.conn, payload); err != nil {
			return 0, 0, 0, nil, err
		}
		if typ&nbdReplyErrBit != 0 {
			e, msg := uint32(0), ""
			if len(payload) >= 6 {
				e = binary.BigEndian.Uint32(payload)
				if ml := int(binary.BigEndian.Uint16(payload[4:])); 6+ml <= len(payload) {
					msg = string(payload[6 : 6+ml])
				}
			}
			return 0, 0, 0, nil, fmt.Errorf("server error %d: %s", e, msg)
		}
		return cookie, typ, flags, payload, nil
	default:
		return 0, 0, 0, nil, errors.New("bad reply magic")
	}
}
