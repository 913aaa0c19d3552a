package qemu

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
)

// fakeNBD serves the handshake of an export of size bytes with the meta
// context, then answers each request with reply(cookie, offset, length).
func fakeNBD(t *testing.T, size uint64, reply func(w io.Writer, cmd uint16, cookie uint64, off uint64, n uint32)) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		be := binary.BigEndian
		w := func(vs ...any) {
			for _, v := range vs {
				_ = binary.Write(server, be, v)
			}
		}
		w(uint64(nbdMagic), uint64(nbdOptMagic), uint16(nbdFlagFixed|nbdFlagNoZeroes))
		var flags uint32
		if binary.Read(server, be, &flags) != nil {
			return
		}
		for {
			var hdr struct {
				Magic    uint64
				Opt, Len uint32
			}
			if binary.Read(server, be, &hdr) != nil {
				return
			}
			data := make([]byte, hdr.Len)
			if _, err := io.ReadFull(server, data); err != nil {
				return
			}
			rep := func(typ uint32, payload []byte) {
				w(uint64(nbdRepMagic), hdr.Opt, typ, uint32(len(payload)))
				if len(payload) > 0 { // an empty write on a pipe waits for a reader
					_, _ = server.Write(payload)
				}
			}
			switch hdr.Opt {
			case nbdOptSetMetaCtx:
				name := "qemu:dirty-bitmap:b"
				rep(nbdRepMetaContext, append([]byte{0, 0, 0, 7}, name...))
				rep(nbdRepAck, nil)
			case nbdOptGo:
				info := make([]byte, 12)
				be.PutUint64(info[2:], size)
				rep(nbdRepInfo, info)
				rep(nbdRepAck, nil)
			default:
				rep(nbdRepAck, nil)
			}
			if hdr.Opt == nbdOptGo {
				break
			}
		}
		for {
			var req struct {
				Magic       uint32
				Flags, Type uint16
				Cookie, Off uint64
				Len         uint32
			}
			if binary.Read(server, be, &req) != nil {
				return
			}
			reply(server, req.Type, req.Cookie, req.Off, req.Len)
		}
	}()
	return client
}

func chunkHdr(w io.Writer, flags, typ uint16, cookie uint64, n uint32) {
	_ = binary.Write(w, binary.BigEndian, uint32(nbdStructMagic))
	_ = binary.Write(w, binary.BigEndian, flags)
	_ = binary.Write(w, binary.BigEndian, typ)
	_ = binary.Write(w, binary.BigEndian, cookie)
	_ = binary.Write(w, binary.BigEndian, n)
}

// QEMU runs as an unprivileged user and may be subverted by its guest: the
// root agent's NBD client refuses replies that point outside the request
// or the export, or announce oversized chunks, instead of writing out of
// bounds or allocating without limit.
func TestNBDClientRefusesHostileReplies(t *testing.T) {
	const size = 1 << 20
	for _, tc := range []struct {
		name  string
		reply func(w io.Writer, cmd uint16, cookie, off uint64, n uint32)
		do    func(c *nbdClient) error
		want  string
	}{
		{"data outside the request", func(w io.Writer, _ uint16, cookie, off uint64, n uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyData, cookie, 8+16)
			_ = binary.Write(w, binary.BigEndian, off+uint64(n)-8)
			_, _ = w.Write(make([]byte, 16))
		}, func(c *nbdClient) error { _, err := c.ReadAt(make([]byte, 4096), 0); return err }, "outside the request"},
		{"negative offset", func(w io.Writer, _ uint16, cookie, _ uint64, _ uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyData, cookie, 8+16)
			_ = binary.Write(w, binary.BigEndian, ^uint64(0))
			_, _ = w.Write(make([]byte, 16))
		}, func(c *nbdClient) error {
			return c.ReadExtents([]Extent{{0, 4096}}, func(int64, []byte) error { return nil })
		}, "outside the request"},
		{"offset that wraps when the length is added (ReadAt)", func(w io.Writer, _ uint16, cookie, off uint64, _ uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyData, cookie, 8+16)
			_ = binary.Write(w, binary.BigEndian, off+uint64(1<<63-1)-8)
			_, _ = w.Write(make([]byte, 16))
		}, func(c *nbdClient) error { _, err := c.ReadAt(make([]byte, 4096), 0); return err }, "outside the request"},
		{"offset that wraps when the length is added (extents)", func(w io.Writer, _ uint16, cookie, off uint64, _ uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyData, cookie, 8+16)
			_ = binary.Write(w, binary.BigEndian, off+uint64(1<<63-1)-8)
			_, _ = w.Write(make([]byte, 16))
		}, func(c *nbdClient) error {
			return c.ReadExtents([]Extent{{0, 4096}}, func(int64, []byte) error { return nil })
		}, "outside the request"},
		{"short read", func(w io.Writer, _ uint16, cookie, off uint64, _ uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyData, cookie, 8+16)
			_ = binary.Write(w, binary.BigEndian, off)
			_, _ = w.Write(make([]byte, 16))
		}, func(c *nbdClient) error { _, err := c.ReadAt(make([]byte, 4096), 0); return err }, "16 of 4096 bytes"},
		{"oversized chunk", func(w io.Writer, _ uint16, cookie, _ uint64, _ uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyData, cookie, 1<<31)
		}, func(c *nbdClient) error {
			return c.ReadExtents([]Extent{{0, 4096}}, func(int64, []byte) error { return nil })
		}, "reply chunk of"},
		{"block status past the export", func(w io.Writer, _ uint16, cookie, _ uint64, _ uint32) {
			chunkHdr(w, nbdReplyFlagDone, nbdReplyBlockStat, cookie, 4+8)
			_ = binary.Write(w, binary.BigEndian, uint32(7))
			_ = binary.Write(w, binary.BigEndian, uint32(size+4096))
			_ = binary.Write(w, binary.BigEndian, uint32(1))
		}, func(c *nbdClient) error { _, err := c.Dirty(); return err }, "outside the export"},
		{"read past the export", nil, func(c *nbdClient) error {
			return c.ReadExtents([]Extent{{size - 4096, 8192}}, func(int64, []byte) error { return nil })
		}, "outside the export"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := tc.reply
			if reply == nil {
				reply = func(io.Writer, uint16, uint64, uint64, uint32) {}
			}
			c, err := dialNBD(fakeNBD(t, size, reply), "e", "qemu:dirty-bitmap:b")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.do(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
