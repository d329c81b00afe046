package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// listen returns the listening socket systemd passed (socket activation:
// LISTEN_PID is this process and LISTEN_FDS at least 1, the socket being
// file descriptor 3), or a new one on addr otherwise. A passed socket must
// be bound to loopback, like addr.
func listen(addr string) (net.Listener, error) {
	pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	fds, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if pid != os.Getpid() || fds < 1 {
		return net.Listen("tcp", addr)
	}
	// The variables are for this process only, not for its children.
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	f := os.NewFile(3, "systemd-socket")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("use the socket systemd passed: %w", err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("refusing the socket systemd passed on %s: not TCP on loopback", ln.Addr())
	}
	return ln, nil
}

// sleepHandler answers /sleep?d=DURATION after DURATION (at most a
// minute): a request that is still in flight when a restart stops the
// process.
func sleepHandler(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d < 0 || d > time.Minute {
		http.Error(w, "d: a duration up to 1m", http.StatusBadRequest)
		return
	}
	select {
	case <-time.After(d):
		fmt.Fprintf(w, "slept %s\n", d)
	case <-r.Context().Done():
	}
}

// drainer counts a server's open connections, so that a graceful stop
// can answer every connection accepted. http.Server.Shutdown does not: a
// connection accepted whose request it has not read yet when Shutdown
// starts is closed unanswered, and behind a socket that systemd keeps
// open across a restart, that is a request lost.
type drainer struct{ open sync.WaitGroup }

// newServer returns the server of mux, with /sleep added, and the
// drainer of its connections.
func newServer(mux *http.ServeMux) (*http.Server, *drainer) {
	mux.HandleFunc("/sleep", sleepHandler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d := &drainer{}
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			d.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			d.open.Done()
		}
	}
	return srv, d
}

// stop closes ln (new connections wait in the socket's queue, or are
// refused if nothing else holds it), lets Serve return (served), and
// waits until every connection accepted has been answered and closed;
// keep-alive is off, so each closes after its answer. Past ctx it closes
// the rest.
func (d *drainer) stop(ctx context.Context, srv *http.Server, ln net.Listener, served <-chan error) error {
	srv.SetKeepAlivesEnabled(false)
	ln.Close()
	select {
	case <-served:
	case <-ctx.Done():
		return srv.Close()
	}
	// Serve has returned: no connection is added any more.
	drained := make(chan struct{})
	go func() { d.open.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		srv.Close()
		return ctx.Err()
	}
}
