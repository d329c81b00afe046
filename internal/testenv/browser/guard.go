package browser

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// guard is the proxy the browser sends every non-loopback request to. It
// answers each with 403 Forbidden and records the request line, so a page
// that references an outside URL fails at once and nothing leaves the
// machine.
type guard struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	asked []string
}

// startGuard listens on a free loopback port and serves until close.
func startGuard() (*guard, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("browser: listen for the network guard: %w", err)
	}
	g := &guard{ln: ln}
	g.wg.Go(g.serve)
	return g, nil
}

// addr is the proxy address to give Chromium.
func (g *guard) addr() string { return g.ln.Addr().String() }

func (g *guard) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return // closed
		}
		g.wg.Go(func() { g.refuse(c) })
	}
}

// refuse records the request line ("CONNECT example.com:443", "GET
// http://192.0.2.1/x.png") and answers 403.
func (g *guard) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	fields := strings.Fields(line)
	if len(fields) >= 2 {
		g.mu.Lock()
		g.asked = append(g.asked, fields[0]+" "+fields[1])
		g.mu.Unlock()
	}
	_, _ = c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// requests returns what was refused so far, in arrival order.
func (g *guard) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.asked...)
}

func (g *guard) close() {
	g.ln.Close()
	g.wg.Wait()
}
