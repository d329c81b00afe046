package main

// Socket activation, slow requests and draining, for the tests and the
// benchmark of restart: socket. The flags (see doc.go):
//
//	-systemd-socket   take the listening socket from systemd (LISTEN_FDS,
//	                  fd 3) instead of binding -addr; without one from
//	                  systemd, exit 1, as an app started without its
//	                  .socket unit does
//	-drain DURATION   on SIGTERM, stop accepting and let the connections
//	                  already accepted finish for up to DURATION (default
//	                  5s), then exit 0 (see drainAndStop)
//
// and the endpoint GET /slow?d=DURATION (at most 1m, default 1s), which
// answers the version after DURATION: a request still in flight when a
// restart begins. Its answer carries the header X-Httpapp-Drained: 1 when
// SIGTERM came while it waited, so a client can count the requests a
// restart let finish.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// listenFdsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFdsStart = 3

// maxSlow bounds /slow's wait.
const maxSlow = time.Minute

// systemdListener returns the listening socket systemd passed this
// process, refusing one that is not on loopback: tests must not reach
// beyond it.
func systemdListener() (net.Listener, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, errors.New("-systemd-socket: no socket from systemd (LISTEN_PID is not this process): start the .socket unit first")
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, errors.New("-systemd-socket: no socket from systemd (LISTEN_FDS)")
	}
	// Not for the children this process has none of, but as sd_listen_fds(3) does.
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	f := os.NewFile(listenFdsStart, "systemd socket")
	ln, err := net.FileListener(f)
	f.Close() // FileListener keeps its own duplicate
	if err != nil {
		return nil, fmt.Errorf("-systemd-socket: fd %d: %w", listenFdsStart, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("-systemd-socket: refusing socket %s: not TCP on loopback", ln.Addr())
	}
	return ln, nil
}

// slowHandler answers version after the wait its d parameter asks;
// stopping is closed when the server begins to shut down.
func slowHandler(version string, stopping <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := time.Second
		if s := r.URL.Query().Get("d"); s != "" {
			var err error
			if d, err = time.ParseDuration(s); err != nil || d < 0 || d > maxSlow {
				http.Error(w, "d: a duration up to "+maxSlow.String(), http.StatusBadRequest)
				return
			}
		}
		// The request's context ends only if the client goes: a server
		// shutting down lets it finish, which is the drain under test.
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		select {
		case <-stopping:
			w.Header().Set("X-Httpapp-Drained", "1")
		default:
		}
		fmt.Fprintln(w, version)
	}
}

// openConns counts the server's open connections, through its ConnState
// hook.
type openConns struct{ n atomic.Int64 }

func (o *openConns) track(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		o.n.Add(1)
	case http.StateClosed, http.StateHijacked:
		o.n.Add(-1)
	}
}

// drainAndStop stops srv without failing a request it accepted: it closes
// the listener (with a socket from systemd, new connections then wait in
// the socket's queue for the next process), answers what the open
// connections send with Connection: close (closing idle ones), and waits
// up to limit for them to close. http.Server.Shutdown is not enough here:
// it closes without an answer a connection it accepted whose request it
// reads after Shutdown began.
func drainAndStop(srv *http.Server, ln net.Listener, conns *openConns, limit time.Duration) error {
	ln.Close()
	srv.SetKeepAlivesEnabled(false)
	deadline := time.Now().Add(limit)
	for conns.n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
