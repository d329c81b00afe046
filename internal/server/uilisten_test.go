package server

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdSocketNames: the sockets systemd passes are told apart by
// name only when server.listen and server.ui_listen are both systemd;
// what does not fit is refused, before any descriptor is used, saying
// what fraisier serve takes.
func TestSystemdSocketNames(t *testing.T) {
	cases := []struct {
		name, listen, ui string
		fds, names       string
		want             string
	}{
		{"both, names unset", "systemd", "systemd", "2", "", `named ["" ""]; with server.listen and server.ui_listen both systemd`},
		{"both, no ui", "systemd", "systemd", "2", "fraisier.socket:other.socket", "FileDescriptorName=ui"},
		{"both, two ui", "systemd", "systemd", "2", "ui:ui", "FileDescriptorName=ui"},
		{"both, one socket", "systemd", "systemd", "1", "ui", "passed 1 socket(s)"},
		{"both, three sockets", "systemd", "systemd", "3", "a:ui:b", "passed 3 socket(s)"},
		{"main only, two sockets", "systemd", "", "2", "fraisier.socket:ui", "two when server.ui_listen is systemd too"},
		{"main systemd, ui tcp, two sockets", "systemd", "127.0.0.1:0", "2", "fraisier.socket:ui", "two when server.ui_listen is systemd too"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": tc.fds, "LISTEN_FDNAMES": tc.names}
			ls, err := OpenListeners(tc.listen, tc.ui, func(k string) string { return env[k] })
			if err == nil {
				ls.Close()
				t.Fatalf("OpenListeners(%q, %q) with %s sockets %q: no error", tc.listen, tc.ui, tc.fds, tc.names)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestOpenListenersAddresses: host:port and unix:/path for each address;
// a ui_listen that cannot be opened closes the main listener and names
// server.ui_listen.
func TestOpenListenersAddresses(t *testing.T) {
	none := func(string) string { return "" }
	dir, err := os.MkdirTemp("", "fui-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "ui.sock")
	ls, err := OpenListeners("127.0.0.1:0", "unix:"+sock, none)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ls.UI.Addr().(*net.UnixAddr); !ok || !local(ls.UI.Addr()) {
		t.Errorf("ui listener %v, want the unix socket", ls.UI.Addr())
	}
	mainAddr := ls.Main.Addr().String()
	ls.Close()

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = OpenListeners(mainAddr, busy.Addr().String(), none)
	if err == nil || !strings.HasPrefix(err.Error(), "server.ui_listen: listen on ") {
		t.Fatalf("ui_listen on a busy port: %v, want server.ui_listen: listen on ...", err)
	}
	// The main listener was closed: its port is free again.
	l, err := net.Listen("tcp", mainAddr)
	if err != nil {
		t.Fatalf("the main listener was left open: %v", err)
	}
	l.Close()

	if ls, err := OpenListeners("127.0.0.1:0", "", none); err != nil || ls.UI != nil {
		t.Errorf("without ui_listen: %v, ui %v; want one listener", err, ls.UI)
	} else {
		ls.Close()
	}
}

// TestPlainDashboard: the warning names the address and the two ways out,
// and only an address other hosts reach without trusted proxies gets it.
func TestPlainDashboard(t *testing.T) {
	cases := []struct {
		addr    net.Addr
		proxies bool
		warns   bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8081}, false, false},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8081}, false, false},
		{&net.UnixAddr{Name: "/run/ui.sock", Net: "unix"}, false, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8081}, false, true},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8081}, false, true},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8081}, true, false},
	}
	for _, tc := range cases {
		msg := PlainDashboard(tc.addr, tc.proxies)
		if (msg != "") != tc.warns {
			t.Errorf("PlainDashboard(%v, proxies %v) = %q, want a warning %v", tc.addr, tc.proxies, msg, tc.warns)
		}
		if msg != "" && (!strings.Contains(msg, tc.addr.String()) || !strings.Contains(msg, "server.trusted_proxies") || !strings.Contains(msg, "loopback")) {
			t.Errorf("warning %q does not name the address and the ways out", msg)
		}
	}
}
