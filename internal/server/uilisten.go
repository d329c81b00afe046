package server

import (
	"fmt"
	"net"
	"net/http"

	"github.com/fraiseql/fraisier/internal/web"
)

// UISocketName is the name (FileDescriptorName=) of the socket systemd
// passes for the dashboard when server.listen and server.ui_listen are
// both systemd.
const UISocketName = "ui"

// Listeners are what serve answers on: Main for server.listen, and UI for
// server.ui_listen when it is set (nil otherwise).
type Listeners struct {
	Main, UI net.Listener
}

// Close closes both listeners.
func (ls Listeners) Close() {
	for _, l := range []net.Listener{ls.Main, ls.UI} {
		if l != nil {
			l.Close()
		}
	}
}

// OpenListeners opens server.listen and, when set, server.ui_listen. When
// both are systemd, systemd passes two sockets and the dashboard's is the
// one named ui; when one is, it passes one socket, whatever its name.
func OpenListeners(listen, uiListen string, getenv func(string) string) (Listeners, error) {
	if uiListen == "" {
		l, err := Listen(listen, getenv)
		return Listeners{Main: l}, err
	}
	if listen == "systemd" && uiListen == "systemd" {
		return systemdPair(getenv)
	}
	var ls Listeners
	var err error
	if ls.Main, err = Listen(listen, getenv); err != nil {
		return Listeners{}, err
	}
	if ls.UI, err = Listen(uiListen, getenv); err != nil {
		ls.Close()
		return Listeners{}, fmt.Errorf("server.ui_listen: %w", err)
	}
	return ls, nil
}

// systemdPair takes the two sockets systemd passed: the one named ui for
// the dashboard, the other for the rest.
func systemdPair(getenv func(string) string) (Listeners, error) {
	socks, err := systemdSockets(getenv)
	if err != nil {
		return Listeners{}, err
	}
	hint := "with server.listen and server.ui_listen both systemd, fraisier serve takes two sockets, the dashboard's named " + UISocketName +
		" (FileDescriptorName=" + UISocketName + " in its .socket unit)"
	var ui, main []systemdSocket
	for _, s := range socks {
		if s.name == UISocketName {
			ui = append(ui, s)
		} else {
			main = append(main, s)
		}
	}
	if len(ui) != 1 || len(main) != 1 {
		names := make([]string, len(socks))
		for i, s := range socks {
			names[i] = fmt.Sprintf("%q", s.name)
		}
		return Listeners{}, fmt.Errorf("listen: systemd passed %d socket(s) named %v; %s", len(socks), names, hint)
	}
	var ls Listeners
	if ls.Main, err = fileListener(main[0]); err != nil {
		return Listeners{}, err
	}
	if ls.UI, err = fileListener(ui[0]); err != nil {
		ls.Close()
		return Listeners{}, err
	}
	return ls, nil
}

// mountDashboard serves the dashboard under /ui/ on the main listener or,
// with server.ui_listen, on its own handler, the main listener then
// answering /ui/ with 404 and a hint.
func (s *Server) mountDashboard(ui http.Handler) {
	if s.cfg.Server.UIListen == "" {
		if ui != nil {
			s.mux.Handle(web.Prefix, ui)
		}
		return
	}
	s.uiMux = http.NewServeMux()
	if ui != nil {
		s.uiMux.Handle(web.Prefix, ui)
		s.uiMux.Handle("GET /{$}", http.RedirectHandler(web.Prefix, http.StatusSeeOther))
	}
	s.mux.HandleFunc(web.Prefix, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.Error(w, "404 page not found: the dashboard is served on its own address (server.ui_listen), not on this one", http.StatusNotFound)
	})
}

// UIHandler is the handler of the dashboard's own address
// (server.ui_listen), or nil when the dashboard is served on the main one.
func (s *Server) UIHandler() http.Handler {
	if s.uiMux == nil {
		return nil
	}
	return s.uiMux
}

// PlainDashboard says why serving the dashboard on a, over plain HTTP,
// exposes its sign-in ("" when it does not): a is an address other hosts
// reach and no trusted proxy can have received the request over HTTPS, so
// the token typed in the sign-in form and the session cookie, which is
// then not Secure, cross the network unencrypted.
func PlainDashboard(a net.Addr, trustedProxies bool) string {
	if local(a) || trustedProxies {
		return ""
	}
	return fmt.Sprintf("the dashboard on %s is plain HTTP on an address other hosts can reach: "+
		"the token typed in its sign-in form and the session cookie (not Secure without HTTPS) cross the network unencrypted; "+
		"put a TLS reverse proxy in front of it and list it in server.trusted_proxies, or set server.ui_listen to a loopback address or a unix: socket", a)
}
