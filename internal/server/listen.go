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
	switch {
	case addr == "systemd":
		return systemdListener(getenv)
	case strings.HasPrefix(addr, "unix:"):
		path := strings.TrimPrefix(addr, "unix:")
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
	default:
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
}

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

func systemdListener(getenv func(string) string) (net.Listener, error) {
	pid, err := strconv.Atoi(getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, errors.New("listen: systemd: no socket passed to this process (LISTEN_PID is not ours): run fraisier serve from a .socket unit, or set server.listen to host:port")
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, errors.New("listen: systemd: LISTEN_FDS names no socket")
	}
	if n > 1 {
		return nil, fmt.Errorf("listen: systemd passed %d sockets; fraisier serve takes one", n)
	}
	syscall.CloseOnExec(listenFDsStart)
	f := os.NewFile(listenFDsStart, "systemd-socket")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("listen: systemd socket: %w", err)
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
