package github

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

// HTTP/2 frame types and flags the fake server below uses (RFC 9113).
const (
	h2Data          = 0x0
	h2Headers       = 0x1
	h2RSTStream     = 0x3
	h2Settings      = 0x4
	h2FlagEnd       = 0x1 // END_STREAM on DATA and HEADERS, ACK on SETTINGS
	h2ProtocolErr   = 0x1
	h2ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// rstServer is a cleartext HTTP/2 server that reads every request in full
// and then resets its stream with PROTOCOL_ERROR. It counts the requests
// (HEADERS frames) it received.
func rstServer(t *testing.T) (addr string, requests *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	requests = new(atomic.Int32)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveRST(conn, requests)
		}
	}()
	return l.Addr().String(), requests
}

func serveRST(conn net.Conn, requests *atomic.Int32) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	preface := make([]byte, len(h2ClientPreface))
	if _, err := io.ReadFull(r, preface); err != nil || string(preface) != h2ClientPreface {
		return
	}
	writeFrame := func(typ, flags byte, stream uint32, payload []byte) error {
		hdr := make([]byte, 9, 9+len(payload))
		hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		hdr[3], hdr[4] = typ, flags
		binary.BigEndian.PutUint32(hdr[5:], stream)
		_, err := conn.Write(append(hdr, payload...))
		return err
	}
	if writeFrame(h2Settings, 0, 0, nil) != nil {
		return
	}
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags := hdr[3], hdr[4]
		stream := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
		if _, err := io.CopyN(io.Discard, r, int64(length)); err != nil {
			return
		}
		switch {
		case typ == h2Settings && flags&h2FlagEnd == 0:
			if writeFrame(h2Settings, h2FlagEnd, 0, nil) != nil {
				return
			}
		case typ == h2Headers:
			requests.Add(1)
		}
		if (typ == h2Headers || typ == h2Data) && flags&h2FlagEnd != 0 {
			// The whole request arrived: GitHub may have processed it.
			code := make([]byte, 4)
			binary.BigEndian.PutUint32(code, h2ProtocolErr)
			if writeFrame(h2RSTStream, 0, stream, code) != nil {
				return
			}
		}
	}
}

// TestNoHTTP2RetryOnceWritten: net/http's HTTP/2 transport re-sends a request
// whose stream the server reset with PROTOCOL_ERROR, on a fresh connection
// each time, if it can rewind the body. The token request must not be
// rewindable: the server had read it in full, so the refresh token or code
// may be spent. (GETs spend nothing and are left out: net/http retries them
// until the timeout.)
func TestNoHTTP2RetryOnceWritten(t *testing.T) {
	addr, requests := rstServer(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := New(Config{ClientID: testClientID, ClientSecret: testClientSecret, Timeout: 2 * time.Second,
		BaseURL: "http://" + addr, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	calls := everyCall(c)
	for i, op := range []string{opRefresh, opExchange} {
		err := calls[op](t.Context())
		wantUpstream(t, err, flashauth.UpstreamTransient, op)
		if errors.Is(err, ErrTimeout) {
			t.Errorf("%s: err = %v; want the reset reported, not a timeout spent retrying", op, err)
		}
		if got, want := requests.Load(), int32(i+1); got != want {
			t.Fatalf("%s: server saw %d requests in all, want %d: the written request was re-sent", op, got, want)
		}
	}
}
