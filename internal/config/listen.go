package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// validateListen checks server.listen and server.ui_listen, each on its
// own, then that they name different places.
func (l *loader) validateListen() {
	s := &l.cfg.Server
	l.validateListenAddr("server.listen", s.Listen, "127.0.0.1:8080")
	if s.UIListen == "" {
		return
	}
	if !l.validateListenAddr("server.ui_listen", s.UIListen, "127.0.0.1:8081") {
		return
	}
	if msg := ListenConflict(s.Listen, s.UIListen); msg != "" {
		l.report("server.ui_listen", msg, "give the dashboard an address of its own (127.0.0.1:8081), or remove ui_listen to serve it under /ui/ on server.listen")
	}
}

// validateListenAddr reports what is wrong with addr, the value of key,
// and says whether it is well formed.
func (l *loader) validateListenAddr(key, addr, example string) bool {
	name := key[strings.LastIndexByte(key, '.')+1:]
	switch {
	case addr == "systemd":
	case strings.HasPrefix(addr, "unix:"):
		if p := strings.TrimPrefix(addr, "unix:"); !filepath.IsAbs(p) {
			l.report(key, fmt.Sprintf("socket path %q is not absolute", p), "write unix:/run/fraisier/fraisier.sock")
			return false
		}
	default:
		if msg := hostPortProblem(addr); msg != "" {
			l.report(key, fmt.Sprintf("%s %q %s", name, addr, msg), "write host:port ("+example+"), unix:/path, or systemd")
			return false
		}
	}
	return true
}

// ListenConflict says why serve could not listen on both listen and
// ui_listen, two well-formed addresses, or "" when it can: the same
// address, the same socket file, or the same port where one host is a
// wildcard (0.0.0.0 takes the port on every address). Two systemd
// sockets are told apart by their names.
func ListenConflict(listen, ui string) string {
	same := fmt.Sprintf("ui_listen %q is where server.listen (%q) already listens", ui, listen)
	switch {
	case listen == "systemd" || ui == "systemd":
		return ""
	case strings.HasPrefix(listen, "unix:") || strings.HasPrefix(ui, "unix:"):
		if filepath.Clean(strings.TrimPrefix(listen, "unix:")) == filepath.Clean(strings.TrimPrefix(ui, "unix:")) {
			return same
		}
		return ""
	}
	h1, p1, err1 := net.SplitHostPort(listen)
	h2, p2, err2 := net.SplitHostPort(ui)
	if err1 != nil || err2 != nil {
		return ""
	}
	if normalPort(p1) != normalPort(p2) {
		return ""
	}
	if wildcard(h1) || wildcard(h2) || sameHost(h1, h2) {
		return same
	}
	return ""
}

func normalPort(p string) string {
	n, _ := strconv.Atoi(p)
	return strconv.Itoa(n)
}

// wildcard says whether host listens on every address.
func wildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// sameHost says whether two hosts of listen addresses are one: the same
// name or address, or localhost and a loopback address.
func sameHost(a, b string) bool {
	ia, errA := netip.ParseAddr(a)
	ib, errB := netip.ParseAddr(b)
	switch {
	case strings.EqualFold(a, b):
		return true
	case errA == nil && errB == nil:
		return ia.Unmap() == ib.Unmap()
	case strings.EqualFold(a, "localhost"):
		return errB == nil && ib.Unmap().IsLoopback()
	case strings.EqualFold(b, "localhost"):
		return errA == nil && ia.Unmap().IsLoopback()
	}
	return false
}
