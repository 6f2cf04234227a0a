package e2e

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// tcpProxy stands between the replicas and PostgreSQL on loopback, so a test
// can take the database away from them without touching the server that
// other tests share.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	refusing bool
	conns    map[net.Conn]struct{}
}

func newTCPProxy(tb testing.TB, target string) *tcpProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	wg.Go(p.serve)
	tb.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

// url returns dbURL with its host replaced by the proxy's address.
func (p *tcpProxy) url(tb testing.TB, dbURL string) string {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// cut closes every proxied connection and refuses new ones until restore,
// like a database that went away. It returns how many connections it cut.
func (p *tcpProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = true
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	return n / 2 // each proxied connection is a pair
}

// restore accepts connections again.
func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.refusing = false
	p.mu.Unlock()
}

func (p *tcpProxy) serve() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() { p.handle(client) })
	}
}

func (p *tcpProxy) handle(client net.Conn) {
	p.mu.Lock()
	refusing := p.refusing
	p.mu.Unlock()
	if refusing {
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.refusing { // cut while dialling
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One direction ended: end the whole connection, as a dead peer
		// would.
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(server, client) })
	wg.Go(func() { pipe(client, server) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}
