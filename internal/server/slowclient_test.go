package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// attacker sends requests from one loopback address and keeps their
// connections open.
type attacker struct {
	t     *testing.T
	addr  string // the server's host:port
	from  net.IP
	conns []net.Conn
	// answered counts requests the server answered or cut.
	answered atomic.Int64
	statuses sync.Map // status code → *atomic.Int64
	wg       sync.WaitGroup
}

// send opens a connection and writes head then body on it, and counts the
// answer when it comes.
func (a *attacker) send(head string, body []byte) {
	a.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.from}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", a.addr)
	if err != nil {
		a.t.Fatalf("dial from %s: %v", a.from, err)
	}
	a.conns = append(a.conns, c)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		// A refused request's answer comes before its body is all sent.
		c.Write(append([]byte(head), body...))
	}()
	go func() {
		defer a.wg.Done()
		defer a.answered.Add(1)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		status := 0 // cut without an answer
		if err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		n, _ := a.statuses.LoadOrStore(status, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}()
}

func (a *attacker) count(status int) int64 {
	if n, ok := a.statuses.Load(status); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func (a *attacker) close() {
	for _, c := range a.conns {
		c.Close()
	}
	a.wg.Wait()
}

func pushHead(length int) string {
	return fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: fraisier\r\nContent-Type: application/json\r\n"+
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\nContent-Length: %d\r\n\r\n", length)
}

// TestSlowClientsDoNotShutOutOthers: one source holding many request
// bodies open, announcing large bodies and sending a byte, or sending
// its bodies in full and stopping short of the end, does not make the
// server refuse a valid delivery from another source.
func TestSlowClientsDoNotShutOutOthers(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name  string
		conns int
		body  int // bytes each connection sends of the limit it announces
	}{
		{"announce the limit, send a byte", 80, 1},
		{"send all but the last byte", 80, limit - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIntakeWith(t, strings.Replace(fmt.Sprintf(intakeConfig, "0", "1", ""), "body_limit: 65536", fmt.Sprintf("body_limit: %d", limit), 1))
			a := &attacker{t: t, addr: strings.TrimPrefix(f.url, "http://"), from: net.IPv4(127, 0, 0, 2)}
			defer a.close()
			body := bytes.Repeat([]byte(" "), tc.body)
			for range tc.conns {
				a.send(pushHead(limit), body)
			}
			// Every request is in the handler, reading its body, or was
			// answered.
			until(t, "the slow requests to reach the handler", func() bool {
				return f.srv.writer.coming.Load()+a.answered.Load() == int64(tc.conns)
			})
			status, ans := f.send(githubDelivery("push", "from-elsewhere", "gh-secret-0123456789", payload(t, "github_push")))
			if status != http.StatusAccepted {
				t.Fatalf("valid push from another source while %s held %d bodies: %d %s (%s)", a.from, tc.conns, status, ans.Outcome, ans.Reason)
			}
			t.Logf("%s: %d answered 429, %d 408, %d cut, %d still open", a.from, a.count(429), a.count(408), a.count(0), int64(tc.conns)-a.answered.Load())
			a.close()
			until(t, "every body's bytes to be given back", func() bool {
				b := f.srv.bodyBudget
				b.mu.Lock()
				defer b.mu.Unlock()
				return b.used == 0 && len(b.sources) == 0
			})
		})
	}
}

// TestSlowBodyIsCut: a body that does not arrive within the body
// deadline is answered 408 and its connection's budget given back, even
// on a server without a read timeout.
func TestSlowBodyIsCut(t *testing.T) {
	f := newIntake(t, "0", "1", "")
	f.srv.bodyTimeout = 300 * time.Millisecond
	a := &attacker{t: t, addr: strings.TrimPrefix(f.url, "http://"), from: net.IPv4(127, 0, 0, 2)}
	defer a.close()
	began := time.Now()
	a.send(pushHead(1000), []byte("{"))
	until(t, "the slow request to be answered", func() bool { return a.answered.Load() == 1 })
	if took := time.Since(began); a.count(http.StatusRequestTimeout) != 1 || took > 3*time.Second {
		t.Errorf("slow body: 408 %d times after %s, want once within the deadline (300ms) and a little", a.count(http.StatusRequestTimeout), took)
	}
	if f.srv.writer.coming.Load() != 0 {
		t.Errorf("the slow request is still counted as coming to the writer")
	}
}

// until polls cond until it holds, for up to 10 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testenv.Eventually(10*time.Second, 5*time.Millisecond, cond) {
		t.Fatalf("%s: not within 10s", what)
	}
}
