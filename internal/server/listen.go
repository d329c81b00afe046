package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Listen opens what server.listen names: host:port, unix:/path, or
// systemd for a socket passed by systemd socket activation (LISTEN_FDS).
// getenv is os.Getenv outside tests.
func Listen(addr string, getenv func(string) string) (net.Listener, error) {
	if addr == "systemd" {
		return systemdListener(getenv)
	}
	return listenAddr(addr)
}

// listenAddr opens host:port or unix:/path.
func listenAddr(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
	// A socket file left by a process that died would make bind fail;
	// only a socket is removed, never another kind of file.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another process is listening there", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// systemdSocket is one socket systemd passed: its descriptor and its name
// (FileDescriptorName=, by default the .socket unit's name).
type systemdSocket struct {
	fd   int
	name string
}

// systemdSockets are the sockets systemd passed to this process.
func systemdSockets(getenv func(string) string) ([]systemdSocket, error) {
	pid, err := strconv.Atoi(getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, errors.New("listen: systemd: no socket passed to this process (LISTEN_PID is not ours): run fraisier serve from a .socket unit, or set server.listen to host:port")
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, errors.New("listen: systemd: LISTEN_FDS names no socket")
	}
	names := strings.Split(getenv("LISTEN_FDNAMES"), ":")
	out := make([]systemdSocket, n)
	for i := range out {
		out[i].fd = listenFDsStart + i
		if len(names) == n {
			out[i].name = names[i]
		}
	}
	return out, nil
}

// systemdListener is the one socket systemd passed.
func systemdListener(getenv func(string) string) (net.Listener, error) {
	socks, err := systemdSockets(getenv)
	if err != nil {
		return nil, err
	}
	if len(socks) > 1 {
		return nil, fmt.Errorf("listen: systemd passed %d sockets; fraisier serve takes one (two when server.ui_listen is systemd too)", len(socks))
	}
	return fileListener(socks[0])
}

func fileListener(s systemdSocket) (net.Listener, error) {
	syscall.CloseOnExec(s.fd)
	f := os.NewFile(uintptr(s.fd), "systemd-socket-"+s.name)
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("listen: systemd socket %d (%s): %w", s.fd, s.name, err)
	}
	return l, nil
}

// Notify sends a state line (READY=1, STOPPING=1) to the service manager
// when NOTIFY_SOCKET is set (Type=notify units); otherwise it does nothing.
func Notify(getenv func(string) string, state string) error {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return nil
}
