package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Questions about units go to the manager over D-Bus, in process, with
// go-systemd's client, rather than to systemctl, a process per question.
// The manager's private socket is used, as systemctl itself does as root
// and with --user: it speaks D-Bus peer to peer, with no message bus (so
// no Hello) and EXTERNAL authentication by the caller's uid.

// errBusUnavailable says the private socket cannot be used here: the
// question goes to systemctl instead.
var errBusUnavailable = errors.New("systemd private socket unavailable")

// busIdle is how long a Manager keeps an unused connection open.
const busIdle = 5 * time.Second

// busPath is the manager's private socket, or "" where systemctl would not
// use it either: the system manager's answers only root (systemctl as
// another user goes through the system bus and polkit).
func (m *Manager) busPath() string {
	if m.scope == ScopeSystem {
		if os.Geteuid() != 0 {
			return ""
		}
		return "/run/systemd/private"
	}
	rt := m.getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(rt) {
		return ""
	}
	return filepath.Join(rt, "systemd", "private")
}

// sharedBus is a Manager's connection to the private socket at path,
// opened at the first question and shared by those that follow until it
// has been unused for busIdle: setting up a connection costs the manager
// more than several questions on an open one, and a deploy asks a few in a
// row (UnitFiles, then WaitActive's polls). A nil *sharedBus has no socket.
type sharedBus struct {
	path string

	mu    sync.Mutex
	conn  *busConn
	users int
	idle  *time.Timer
}

// busConn is one connection: go-systemd's client and, for the calls it has
// no typed form of, one of the godbus connections under it.
type busConn struct {
	*sdbus.Conn
	raw    *dbus.Conn
	cancel context.CancelFunc
}

func (c *busConn) close() {
	c.Close()
	c.cancel()
}

// do runs f with the connection, opening it first if needed.
func (s *sharedBus) do(ctx context.Context, f func(*busConn) error) error {
	c, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	return f(c)
}

func (s *sharedBus) acquire(ctx context.Context) (*busConn, error) {
	if s == nil {
		return nil, errBusUnavailable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
	}
	// A connection the manager dropped (a re-exec, say) is replaced.
	if s.conn != nil && !s.conn.Connected() {
		s.conn.close()
		s.conn = nil
	}
	if s.conn == nil {
		c, err := dialBus(ctx, s.path)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	s.users++
	return s.conn, nil
}

func (s *sharedBus) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users--; s.users == 0 {
		s.idle = time.AfterFunc(busIdle, s.closeIdle)
	}
}

// closeIdle closes the connection unless a question is using it.
func (s *sharedBus) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == 0 && s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
}

// dialBus connects to the private socket at path. Its setup is bounded by
// ctx and queryTimeout; once set up, the connection lives until closed.
func dialBus(ctx context.Context, path string) (*busConn, error) {
	ctx, cancelSetup := context.WithTimeout(ctx, queryTimeout)
	defer cancelSetup()
	life, cancel := context.WithCancel(context.Background())
	abandon := context.AfterFunc(ctx, cancel) // closes whatever was dialled
	b := &busConn{cancel: cancel}
	addr := "unix:path=" + dbus.EscapeBusAddressValue(path)
	conn, err := sdbus.NewConnection(func() (*dbus.Conn, error) {
		c, err := dbus.Dial(addr, dbus.WithContext(life))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Geteuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		b.raw = c
		return c, nil
	})
	if !abandon() && err == nil {
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	b.Conn = conn
	return b, nil
}

// managerProperty reads one property of the manager object into out.
func (c *busConn) managerProperty(ctx context.Context, name string, out any) error {
	var v dbus.Variant
	err := c.raw.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Manager", name).Store(&v)
	if err == nil {
		err = dbus.Store([]any{v.Value()}, out)
	}
	if err != nil {
		return fmt.Errorf("manager property %s: %w", name, err)
	}
	return nil
}
