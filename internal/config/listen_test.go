package config

import (
	"errors"
	"strings"
	"testing"
)

// TestUIListen: server.ui_listen takes the forms server.listen takes, and
// is refused where it is malformed or where server.listen already
// listens, with the key, what is wrong and a fix.
func TestUIListen(t *testing.T) {
	cases := []struct {
		name, server string
		// wantPath is the problem's key ("" for none); wantMsg and
		// wantHint are parts of its message and hint.
		wantPath, wantMsg, wantHint string
	}{
		{name: "unset", server: "listen: 127.0.0.1:8080"},
		{name: "other_port", server: "listen: 127.0.0.1:8080\nui_listen: 127.0.0.1:8081"},
		{name: "other_host_same_port", server: "listen: 127.0.0.1:8080\nui_listen: \"192.0.2.1:8080\""},
		{name: "default_listen", server: "ui_listen: 127.0.0.1:8081"},
		{name: "unix", server: "listen: unix:/run/fraisier.sock\nui_listen: unix:/run/fraisier-ui.sock"},
		{name: "both_systemd", server: "listen: systemd\nui_listen: systemd"},
		{name: "systemd_and_tcp", server: "listen: systemd\nui_listen: 127.0.0.1:8080"},
		{name: "ipv6", server: "listen: \"[::1]:8080\"\nui_listen: \"[::1]:8081\""},

		{name: "same", server: "listen: 127.0.0.1:8080\nui_listen: 127.0.0.1:8080",
			wantPath: "server.ui_listen", wantMsg: "where server.listen", wantHint: "remove ui_listen"},
		{name: "same_as_default", server: "ui_listen: 127.0.0.1:8080",
			wantPath: "server.ui_listen", wantMsg: "where server.listen", wantHint: "127.0.0.1:8081"},
		{name: "wildcard_takes_the_port", server: "listen: \"0.0.0.0:8080\"\nui_listen: 127.0.0.1:8080",
			wantPath: "server.ui_listen", wantMsg: "where server.listen"},
		{name: "empty_host_takes_the_port", server: "listen: 127.0.0.1:8080\nui_listen: \":8080\"",
			wantPath: "server.ui_listen", wantMsg: "where server.listen"},
		{name: "localhost_is_loopback", server: "listen: 127.0.0.1:8080\nui_listen: localhost:8080",
			wantPath: "server.ui_listen", wantMsg: "where server.listen"},
		{name: "leading_zero_port", server: "listen: 127.0.0.1:8080\nui_listen: 127.0.0.1:08080",
			wantPath: "server.ui_listen", wantMsg: "where server.listen"},
		{name: "same_socket", server: "listen: unix:/run/f.sock\nui_listen: unix:/run//f.sock",
			wantPath: "server.ui_listen", wantMsg: "where server.listen"},
		{name: "no_port", server: "ui_listen: \"8081\"",
			wantPath: "server.ui_listen", wantMsg: `ui_listen "8081" is not host:port`, wantHint: "unix:/path, or systemd"},
		{name: "bad_port", server: "ui_listen: 127.0.0.1:99999",
			wantPath: "server.ui_listen", wantMsg: "no valid port", wantHint: "127.0.0.1:8081"},
		{name: "relative_socket", server: "ui_listen: unix:run/ui.sock",
			wantPath: "server.ui_listen", wantMsg: "not absolute", wantHint: "unix:/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "server:\n" + indent(tc.server, 2) + apiWith(base)
			_, err := Parse("fraises.yaml", []byte(yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
			if tc.wantPath == "" {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("want one problem at %s, got %v", tc.wantPath, err)
			}
			p := ce.Problems[0]
			if p.Path != tc.wantPath || !strings.Contains(p.Message, tc.wantMsg) || !strings.Contains(p.Hint, tc.wantHint) {
				t.Errorf("problem %s: %q (hint %q); want %s: ...%q... (hint ...%q...)", p.Path, p.Message, p.Hint, tc.wantPath, tc.wantMsg, tc.wantHint)
			}
			if p.Line == 0 {
				t.Errorf("problem %s has no line", p.Path)
			}
		})
	}
}

// TestListenConflict: serve re-checks the two addresses after --listen
// overrides server.listen.
func TestListenConflict(t *testing.T) {
	cases := []struct {
		listen, ui string
		conflict   bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8081", false},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"[::]:8080", "[::1]:8080", true},
		{"[::1]:8080", "[::ffff:127.0.0.1]:8080", false},
		{"127.0.0.1:8080", "[::ffff:127.0.0.1]:8080", true},
		{"localhost:8080", "[::1]:8080", true},
		{"example.com:8080", "example.org:8080", false},
		{"EXAMPLE.com:8080", "example.COM:8080", true},
		{"systemd", "systemd", false},
		{"unix:/run/a.sock", "unix:/run/b.sock", false},
		{"unix:/run/a.sock", "127.0.0.1:8080", false},
	}
	for _, tc := range cases {
		msg := ListenConflict(tc.listen, tc.ui)
		if (msg != "") != tc.conflict {
			t.Errorf("ListenConflict(%q, %q) = %q, want conflict %v", tc.listen, tc.ui, msg, tc.conflict)
		}
	}
}
