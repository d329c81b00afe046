package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type behaviour struct {
	crash      bool
	unhealthy  bool
	hang       bool
	slow       time.Duration
	crashAfter time.Duration
}

func main() {
	addr := flag.String("addr", "", "listen address (default 127.0.0.1:$PORT)")
	dir := flag.String("dir", ".", "directory holding VERSION and behaviour")
	fromSystemd := flag.Bool("systemd-socket", false, "take the listening socket from systemd (socket activation) instead of -addr")
	drain := flag.Duration("drain", 5*time.Second, "on SIGTERM, how long requests in flight may finish")
	probe := flag.String("probe", "", "do not serve: GET /health from the httpapp listening on this unix socket, exit 0 if it answers 200")
	flag.Parse()
	if *probe != "" {
		if err := probeUnix(*probe); err != nil {
			fmt.Fprintln(os.Stderr, "httpapp -probe:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*addr, *dir, *fromSystemd, *drain); err != nil {
		fmt.Fprintln(os.Stderr, "httpapp:", err)
		os.Exit(1)
	}
}

func run(addr, dir string, fromSystemd bool, drain time.Duration) error {
	socket, unix := strings.CutPrefix(addr, "unix:")
	if !fromSystemd && !unix {
		var err error
		if addr, err = loopbackAddr(addr); err != nil {
			return err
		}
	}
	version := "unknown"
	if b, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil {
		version = strings.TrimSpace(string(b))
	}
	b, err := readBehaviour(filepath.Join(dir, "behaviour"))
	if err != nil {
		return err
	}
	if b.crash {
		return fmt.Errorf("version %s: crashing at start as told", version)
	}
	time.Sleep(b.slow)

	var ln net.Listener
	switch {
	case fromSystemd:
		ln, err = systemdListener()
	case unix:
		ln, err = listenUnix(socket)
	default:
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	// hangUntil is closed when the server stops, so that a hanging
	// /health does not hold up a graceful shutdown.
	hangUntil := make(chan struct{})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if b.hang {
			// Accepted, read, never answered: the client's own timeout is
			// the only way out (or the server stopping).
			select {
			case <-r.Context().Done():
			case <-hangUntil:
			}
			return
		}
		if b.unhealthy {
			http.Error(w, "unhealthy "+version, http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "ok %s\n", version)
	})
	mux.HandleFunc("/slow", slowHandler(version, hangUntil))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, version)
	})
	var conns openConns
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ConnState: conns.track}
	fmt.Printf("httpapp %s listening on %s\n", version, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var crash <-chan time.Time
	if b.crashAfter > 0 {
		crash = time.After(b.crashAfter)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-crash:
		return fmt.Errorf("version %s: crashing after %s as told", version, b.crashAfter)
	case <-ctx.Done():
		close(hangUntil)
		return drainAndStop(srv, ln, &conns, drain)
	}
}

// loopbackAddr is addr, or 127.0.0.1:$PORT when it is empty, refused
// unless on loopback: tests must not reach beyond it, whatever they pass.
func loopbackAddr(addr string) (string, error) {
	if addr == "" {
		port := os.Getenv("PORT")
		if port == "" {
			return "", errors.New("no -addr and no PORT")
		}
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("parse -addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("refusing non-loopback address %s", addr)
	}
	return addr, nil
}

func readBehaviour(path string) (behaviour, error) {
	var b behaviour
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("read behaviour: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		name, arg, _ := strings.Cut(line, ":")
		switch name {
		case "", "healthy":
		case "unhealthy":
			b.unhealthy = true
		case "crash":
			b.crash = true
		case "hang":
			b.hang = true
		case "slow", "crash-after":
			d, err := time.ParseDuration(arg)
			if err != nil {
				return b, fmt.Errorf("behaviour %q: %w", line, err)
			}
			if name == "slow" {
				b.slow = d
			} else {
				b.crashAfter = d
			}
		default:
			// A typo in a test fixture must not pass as "healthy".
			return b, fmt.Errorf("unknown behaviour %q", line)
		}
	}
	return b, nil
}
