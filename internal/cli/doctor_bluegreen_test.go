package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/fraiseql/fraisier/internal/testenv/proxy"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// TestDoctorBlueGreen checks doctor's blue/green lines against a real
// systemd user manager and a real nginx and Caddy: each colour's instance
// of the template, and the proxy; then a template that is not there and a
// Caddy admin API that does not answer, each with its fix.
func TestDoctorBlueGreen(t *testing.T) {
	root := t.TempDir()
	mgr := tsystemd.UserManager(t)
	for _, kv := range mgr.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	template := mgr.Unit("dbg@.service")
	mgr.WriteUnit(t, template, "[Service]\nExecStart=/bin/sleep 600\n")
	n := proxy.StartNginx(t, "hello", "127.0.0.1:1")
	c := proxy.StartCaddy(t, "hello", "127.0.0.1:1")
	origin := testenv.NewOrigin(t, root)
	origin.Write("VERSION", "v1")
	origin.Commit("v1")
	h := &doctorHost{root: root, cfg: filepath.Join(root, "fraises.yaml"), state: filepath.Join(root, "state", "fraisier.db")}
	write := func(unit, proxyYAML string) {
		cfg := fmt.Sprintf(`state:
  path: %s
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        restart: blue_green
        blue_green:
          unit: %s
          blue: 127.0.0.1:%d
          green: 127.0.0.1:%d
%s        health_check: {url: "http://127.0.0.1:1/health", timeout: 1s}
`, h.state, origin.Dir, filepath.Join(root, "srv"), unit, testenv.FreePort(t), testenv.FreePort(t), proxyYAML)
		if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nginxYAML := fmt.Sprintf("          nginx:\n            upstream: hello\n            file: %s\n            pid_file: %s\n            test: [%s]\n",
		n.UpstreamFile, n.PIDFile, strings.Join(n.Test, ", "))
	os.MkdirAll(filepath.Join(root, "srv"), 0o755)

	write(template, nginxYAML)
	_, out := h.doctor(t, "hello", "production")
	wantLine(t, out, `ok +unit +hello/production +`+strings.Replace(template, "@.", "@blue.", 1))
	wantLine(t, out, `ok +unit +hello/production +`+strings.Replace(template, "@.", "@green.", 1))
	wantLine(t, out, `ok +proxy +hello/production +nginx upstream hello in .* +no colour serves yet`)

	write(mgr.Unit("nosuch@.service"), fmt.Sprintf("          caddy: {admin: %q, id: nosuch}\n", c.Admin))
	code, out := h.doctor(t, "hello", "production")
	if code == 0 {
		t.Error("doctor passed with no template and no such reverse_proxy")
	}
	wantLine(t, out, `fail +unit +hello/production +`+mgr.Unit("nosuch@blue.service")+` .* no such unit: no file defines the template .*fix: install `+mgr.Unit("nosuch@.service"))
	wantLine(t, out, `fail +proxy +hello/production +caddy @id nosuch .*unknown object ID`)
}

// TestDoctorBlueGreenLink checks doctor's proxy line for blue_green.link
// against a real systemd user manager: what it checked when all is well,
// then a planted link, a link naming a colour whose socket is missing, and
// a directory others could write, each failing with what is wrong.
func TestDoctorBlueGreenLink(t *testing.T) {
	root := t.TempDir()
	mgr := tsystemd.UserManager(t)
	for _, kv := range mgr.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	template := mgr.Unit("dbgl@.service")
	mgr.WriteUnit(t, template, "[Service]\nExecStart=/bin/sleep 600\n")
	origin := testenv.NewOrigin(t, root)
	origin.Write("VERSION", "v1")
	origin.Commit("v1")
	socks, err := os.MkdirTemp("", "fdl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(socks) })
	os.Chmod(socks, 0o755)
	live := filepath.Join(socks, "live")
	os.Mkdir(live, 0o755)
	link := filepath.Join(live, "live.sock")
	h := &doctorHost{root: root, cfg: filepath.Join(root, "fraises.yaml"), state: filepath.Join(root, "state", "fraisier.db")}
	cfg := fmt.Sprintf(`state:
  path: %s
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        restart: blue_green
        blue_green:
          unit: %s
          blue: unix:%s/blue.sock
          green: unix:%s/green.sock
          link: %s
        health_check: {command: [/bin/true, "{colour}"], timeout: 1s}
`, h.state, origin.Dir, filepath.Join(root, "srv"), template, socks, socks, link)
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "srv"), 0o755)

	_, out := h.doctor(t, "hello", "production")
	wantLine(t, out, `ok +proxy +hello/production +link `+link+` +link directory `+live+` is fraisier's alone; sockets `+socks+`/blue.sock and `+socks+`/green.sock are reachable; no colour serves yet`)

	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"planted", func() { os.Symlink("/tmp/elsewhere.sock", link) }, `points at /tmp/elsewhere.sock, not at blue's socket`},
		{"serving socket missing", func() { os.Remove(link); os.Symlink(socks+"/blue.sock", link) }, `blue serves but its socket .* does not exist: the proxy fails every request \(is ` + strings.Replace(template, "@.", "@blue.", 1) + ` running\?\)`},
		{"directory writable by its group", func() { os.Chmod(live, 0o775) }, `is writable by its group \(mode 0775\)`},
	} {
		tc.setup()
		code, out := h.doctor(t, "hello", "production")
		if code == 0 {
			t.Errorf("%s: doctor passed", tc.name)
		}
		wantLine(t, out, `fail +proxy +hello/production +link `+link+` .*`+tc.want+`.*fix: see docs/zero-downtime.md \(link\)`)
	}
}
