package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestGetClassifies checks that each way a request can fail is counted
// as its kind: nothing listening, a connection reset, no answer in time,
// an error status.
func TestGetClassifies(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusBadGateway)
		}
	}))
	defer ok.Close()
	reset := listen(t, func(c net.Conn) {
		buf := make([]byte, 512)
		_, _ = c.Read(buf)
		c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	})
	silent := listen(t, func(c net.Conn) { time.Sleep(2 * time.Second); c.Close() })
	closed := listen(t, func(net.Conn) {})
	closedAddr := closed.Addr().String()
	closed.Close()

	g := newGenerator(loadSpec{rate: 1, timeout: 300 * time.Millisecond}, "")
	for _, tt := range []struct{ url, want string }{
		{ok.URL + "/", ""},
		{ok.URL + "/fail", "status"},
		{"http://" + closedAddr + "/", "refused"},
		{"http://" + reset.Addr().String() + "/", "reset"},
		{"http://" + silent.Addr().String() + "/", "timeout"},
	} {
		if kind, detail := g.get(tt.url); kind != tt.want {
			t.Errorf("get(%s) = %q (%s), want %q", tt.url, kind, detail, tt.want)
		}
	}
}

// TestGeneratorKeepsSchedule checks the open loop: requests go out at the
// rate asked even when every answer takes far longer than the interval,
// one in slowEvery of them slow, and run waits for those in flight.
func TestGeneratorKeepsSchedule(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
	}))
	defer srv.Close()
	g := newGenerator(loadSpec{rate: 100, slowEvery: 5, slowFor: time.Second, timeout: 5 * time.Second}, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res := g.run(ctx)
	if res.sent < 35 || res.sent > 55 {
		t.Errorf("sent %d requests in 0.5 s at 100/s, want about 50", res.sent)
	}
	if res.failed != 0 || res.slowSent != res.sent/5 {
		t.Errorf("failed %d, slow %d of %d; want none failed and one in 5 slow (%s)", res.failed, res.slowSent, res.sent, res.example)
	}
}

// listen serves each connection on a loopback port with serve.
func listen(t *testing.T, serve func(net.Conn)) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l
}
