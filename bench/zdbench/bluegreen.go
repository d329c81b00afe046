package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/testenv/proxy"
)

// isLinkMode says whether m switches by blue_green.link: the proxy dials
// one unix socket path, a symlink fraisier moves, and is never reloaded.
func isLinkMode(name string) bool { return strings.HasSuffix(name, "_link") }

// prepareBlueGreen sets m (blue_green behind nginx, blue_green_caddy
// behind Caddy, blue_green_caddy_link and blue_green_nginx_link behind
// either dialing blue_green.link) up: the template unit whose instances
// run the app from app_path/current-<colour> on two loopback ports (two
// unix sockets for a link), and the proxy, a real nginx or Caddy from the
// system's packages, whose port is the front. The mode is skipped, saying
// why, when the proxy is not installed or fraisier's configuration refuses
// the environment (a fraisier that does not know restart: blue_green).
func (w *world) prepareBlueGreen(m *mode) error {
	blue, green, health, link, err := w.colourAddrs(m.name)
	if err != nil {
		return err
	}
	m.front = side{app: filepath.Join(w.root, "srv", m.name), unit: w.mgr.Unit(m.name + "@.service")}
	unit := fmt.Sprintf("[Unit]\nStartLimitIntervalSec=0\n[Service]\nEnvironmentFile=%s/%s-%%i.env\nExecStart=%s -addr ${ADDR} -dir %s/current-%%i\nRestart=no\n",
		w.root, m.name, w.appBin, m.front.app)
	if err := os.WriteFile(filepath.Join(w.mgr.UnitDir, m.front.unit), []byte(unit), 0o644); err != nil {
		return err
	}
	for colour, addr := range map[string]string{"blue": blue, "green": green} {
		if err := os.WriteFile(filepath.Join(w.root, m.name+"-"+colour+".env"), []byte("ADDR="+addr+"\n"), 0o644); err != nil {
			return err
		}
	}
	proxyYAML, frontAddr, err := w.startProxy(m, blue, link)
	if errors.Is(err, proxy.ErrUnavailable) {
		m.skip = err.Error()
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := fmt.Sscanf(frontAddr[strings.LastIndex(frontAddr, ":")+1:], "%d", &m.front.port); err != nil {
		return fmt.Errorf("the proxy's address %s: %w", frontAddr, err)
	}
	m.restart = "blue_green"
	m.envYAML = fmt.Sprintf(`      %s:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        keep_releases: 100
        auto_deploy: false
        restart: blue_green
        blue_green:
          unit: %s
          blue: %s
          green: %s
          drain: %s
%s        health_check:
%s          interval: 50ms
          timeout: 1s
`, m.name, w.origin, m.front.app, m.front.unit, blue, green, w.drain, proxyYAML, health)
	if why := w.refused(m.name, m.envYAML); why != "" {
		m.skip = "fraisier's config refuses this restart: blue_green environment (" + why + ")"
	}
	return nil
}

// colourAddrs are where each colour of mode name listens, the health
// check's lines, and the link for a link mode: two free loopback ports
// probed by URL, or two unix sockets in a short directory the proxy
// (nobody, under root) can reach, probed by httpapp -probe, beside the
// link's own directory.
func (w *world) colourAddrs(name string) (blue, green, health, link string, err error) {
	if !isLinkMode(name) {
		b, err := freePort()
		if err != nil {
			return "", "", "", "", err
		}
		g, err := freePort()
		if err != nil {
			return "", "", "", "", err
		}
		return fmt.Sprintf("127.0.0.1:%d", b), fmt.Sprintf("127.0.0.1:%d", g), fmt.Sprintf("          url: http://127.0.0.1:%d/health\n", b), "", nil
	}
	dir, err := os.MkdirTemp("", "fzd-")
	if err == nil {
		w.closers = append(w.closers, func() { os.RemoveAll(dir) })
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(dir, "live"), 0o755)
	}
	if err != nil {
		return "", "", "", "", fmt.Errorf("the sockets' directory: %w", err)
	}
	health = fmt.Sprintf("          command: [%q, -probe, %q]\n", w.appBin, "unix:"+dir+"/{colour}.sock")
	return "unix:" + dir + "/blue.sock", "unix:" + dir + "/green.sock", health, filepath.Join(dir, "live", "live.sock"), nil
}

// startProxy starts nginx (modes blue_green, blue_green_nginx_link) or
// Caddy (blue_green_caddy, blue_green_caddy_link): sending traffic to
// initial, or for a link mode dialing link, and returns the environment's
// proxy lines and the proxy's address. The proxy is stopped when the run
// ends.
func (w *world) startProxy(m *mode, initial, link string) (yaml, addr string, err error) {
	switch m.name {
	case "blue_green_caddy":
		c, err := proxy.RunCaddy(w.ctx, "hello", initial)
		if err != nil {
			return "", "", err
		}
		w.closers = append(w.closers, c.Close)
		return fmt.Sprintf("          caddy:\n            admin: %s\n            id: %s\n", c.Admin, c.ID), c.Addr, nil
	case "blue_green_caddy_link":
		// As examples/bluegreen/Caddyfile.link: keep-alive to the link
		// off, unless -link-keepalive measures what it does.
		c, err := proxy.RunCaddy(w.ctx, "hello", "unix/"+link, proxy.UpstreamKeepAlive(w.linkKeepAlive))
		if err != nil {
			return "", "", err
		}
		w.closers = append(w.closers, c.Close)
		m.caddy = c
		if w.linkKeepAlive {
			m.note = "Caddy keeps its connections to the link alive (-link-keepalive)"
		}
		return fmt.Sprintf("          link: %s\n", link), c.Addr, nil
	case "blue_green_nginx_link":
		n, err := proxy.RunNginx(w.ctx, "hello", "unix:"+link)
		if err != nil {
			return "", "", err
		}
		w.closers = append(w.closers, n.Close)
		return fmt.Sprintf("          link: %s\n", link), n.Addr, nil
	}
	n, err := proxy.RunNginx(w.ctx, "hello", initial)
	if err != nil {
		return "", "", err
	}
	w.closers = append(w.closers, n.Close)
	var test []string
	for _, a := range n.Test {
		test = append(test, fmt.Sprintf("%q", a))
	}
	return fmt.Sprintf("          nginx:\n            upstream: %s\n            file: %s\n            pid_file: %s\n            test: [%s]\n",
		n.Upstream, n.UpstreamFile, n.PIDFile, strings.Join(test, ", ")), n.Addr, nil
}

// caddyLoads counts the configurations m's Caddy loaded so far (Caddy 2.6
// logs "autosaved config" at its first load and at each change through its
// admin API); -1 when fraisier does not drive m through a Caddy of its own
// making.
func (m *mode) caddyLoads() int {
	if m.caddy == nil {
		return -1
	}
	return strings.Count(m.caddy.Output(), `"msg":"autosaved config`)
}
