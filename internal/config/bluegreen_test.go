package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const bgBase = base + "restart: blue_green\nhealth_check: {url: http://127.0.0.1:8001/health}\n"

func bgWith(block string) string {
	return apiWith(bgBase + "blue_green:\n" + indent(block, 2))
}

const bgColours = "unit: app@.service\nblue: 127.0.0.1:8001\ngreen: 127.0.0.1:8002\n"

// TestBlueGreen checks restart: blue_green's block: its defaults, and each
// problem reported at its key.
func TestBlueGreen(t *testing.T) {
	cfg, err := Parse("fraises.yaml", []byte(bgWith(bgColours+"nginx: {upstream: app, file: /etc/nginx/fraisier/app.conf}\n")), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Fraises["api"].Environments["production"]
	b := e.BlueGreen
	if !e.IsBlueGreen() || b.Drain.D() != 10*time.Second || b.Nginx.PIDFile != DefaultNginxPIDFile || b.Instance("green") != "app@green.service" || len(b.Units()) != 2 {
		t.Fatalf("defaults: %+v %+v", b, b.Nginx)
	}
	caddy, err := Parse("fraises.yaml", []byte(bgWith(bgColours+"drain: 2s\ncaddy: {id: app}\n")), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	if c := caddy.Fraises["api"].Environments["production"].BlueGreen; c.Caddy.Admin != DefaultCaddyAdmin || c.Drain.D() != 2*time.Second {
		t.Fatalf("caddy defaults: %+v", c)
	}

	const env = "fraises.api.environments.production"
	cases := []struct {
		name  string
		yaml  string
		paths []string
	}{
		{"block without restart", apiWith(base + "blue_green:\n" + indent(bgColours+"caddy: {id: app}\n", 2)), []string{env + ".blue_green"}},
		{"restart without block", apiWith(bgBase), []string{env + ".restart"}},
		{"no proxy", bgWith(bgColours), []string{env + ".blue_green"}},
		{"two proxies", bgWith(bgColours + "caddy: {id: app}\nnginx: {upstream: app, file: /etc/x.conf}\n"), []string{env + ".blue_green.caddy"}},
		{"not a template", bgWith("unit: app.service\nblue: 127.0.0.1:8001\ngreen: 127.0.0.1:8002\ncaddy: {id: app}\n"), []string{env + ".blue_green.unit"}},
		{"same address", bgWith("unit: app@.service\nblue: 127.0.0.1:8001\ngreen: 127.0.0.1:8001\ncaddy: {id: app}\n"), []string{env + ".blue_green.green"}},
		{"bad address", bgWith("unit: app@.service\nblue: \"127.0.0.1:80;x\"\ngreen: unix:run/g.sock\ncaddy: {id: app}\n"), []string{env + ".blue_green", env + ".blue_green.blue", env + ".blue_green.green"}},
		{"socket with url check", bgWith("unit: app@.service\nblue: unix:/run/app/blue.sock\ngreen: unix:/run/app/green.sock\ncaddy: {id: app}\n"), []string{env + ".blue_green"}},
		{"admin not loopback", bgWith(bgColours + "caddy: {id: app, admin: \"http://10.0.0.1:2019\"}\n"), []string{env + ".blue_green.caddy.admin"}},
		{"caddy path", bgWith(bgColours + "caddy: {path: /config/../x}\n"), []string{env + ".blue_green.caddy.path"}},
		{"upstream name", bgWith(bgColours + "nginx: {upstream: \"a b\", file: /etc/x.conf}\n"), []string{env + ".blue_green.nginx.upstream"}},
		{"with systemd_service", apiWith(bgBase + "systemd_service: app\nblue_green:\n" + indent(bgColours+"caddy: {id: app}\n", 2)), []string{env + ".systemd_service"}},
		{"inplace", apiWith(bgBase + "layout: inplace\nblue_green:\n" + indent(bgColours+"caddy: {id: app}\n", 2)), []string{env + ".restart"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fraises.yaml", []byte(tc.yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want problems; input:\n%s", err, tc.yaml)
			}
			var paths []string
			for _, p := range cerr.Problems {
				paths = append(paths, p.Path)
			}
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("problem paths (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

// linkWith is an environment switching by link, its colours on unix
// sockets and probed by a command, with block added to blue_green.
func linkWith(block string) string {
	return apiWith(base + "restart: blue_green\nhealth_check: {command: [probe, \"/run/app/{colour}.sock\"]}\nblue_green:\n" + indent("unit: app@.service\n"+block, 2))
}

// TestBlueGreenLink checks blue_green.link: accepted with both colours on
// unix sockets, and each problem reported at its key.
func TestBlueGreenLink(t *testing.T) {
	const socks = "blue: unix:/run/app/blue.sock\ngreen: unix:/run/app/green.sock\n"
	cfg, err := Parse("fraises.yaml", []byte(linkWith(socks+"link: /run/app-live/live.sock\n")), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Fraises["api"].Environments["production"].BlueGreen; b.Link != "/run/app-live/live.sock" || b.Nginx != nil || b.Caddy != nil || len(b.Units()) != 2 {
		t.Fatalf("link: %+v", b)
	}

	const env = "fraises.api.environments.production.blue_green"
	long := "/run/" + strings.Repeat("x", 100) + ".sock"
	cases := []struct {
		name  string
		yaml  string
		paths []string
	}{
		{"link and nginx", linkWith(socks + "link: /run/l/live.sock\nnginx: {upstream: app, file: /etc/x.conf}\n"), []string{env + ".link"}},
		{"link and caddy", linkWith(socks + "link: /run/l/live.sock\ncaddy: {id: app}\n"), []string{env + ".link"}},
		{"all three", linkWith(socks + "link: /run/l/live.sock\ncaddy: {id: app}\nnginx: {upstream: app, file: /etc/x.conf}\n"), []string{env + ".link"}},
		{"relative link", linkWith(socks + "link: run/live.sock\n"), []string{env + ".link"}},
		{"unclean link", linkWith(socks + "link: /run/l/../live.sock\n"), []string{env + ".link"}},
		{"link too long", linkWith(socks + "link: " + long + "\n"), []string{env + ".link"}},
		{"link with a brace", linkWith(socks + "link: \"/run/l/{x}.sock\"\n"), []string{env + ".link"}},
		{"a colour on a port", linkWith("blue: 127.0.0.1:8001\ngreen: unix:/run/app/green.sock\nlink: /run/l/live.sock\n"), []string{env + ".blue"}},
		{"both on ports", apiWith(bgBase + "blue_green:\n" + indent(bgColours+"link: /run/l/live.sock\n", 2)), []string{env + ".blue", env + ".green"}},
		{"a colour is the link", linkWith(socks + "link: /run/app/green.sock\n"), []string{env + ".green"}},
		{"socket too long", linkWith("blue: unix:" + long + "\ngreen: unix:/run/app/green.sock\nlink: /run/l/live.sock\n"), []string{env + ".blue"}},
		{"url check", apiWith(bgBase + "blue_green:\n" + indent("unit: app@.service\n"+socks+"link: /run/l/live.sock\n", 2)), []string{env}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fraises.yaml", []byte(tc.yaml), Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want problems; input:\n%s", err, tc.yaml)
			}
			var paths []string
			for _, p := range cerr.Problems {
				paths = append(paths, p.Path)
			}
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("problem paths (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}
