package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/testenv/proxy"
)

// prepareBlueGreen sets m (blue_green behind nginx, blue_green_caddy
// behind Caddy) up: the template unit whose instances run the app from
// app_path/current-<colour> on two loopback ports, and the proxy, a real
// nginx or Caddy from the system's packages, whose port is the front. The
// mode is skipped, saying why, when the proxy is not installed or
// fraisier's configuration refuses the environment (a fraisier that does
// not know restart: blue_green).
func (w *world) prepareBlueGreen(m *mode) error {
	blue, err := freePort()
	if err != nil {
		return err
	}
	green, err := freePort()
	if err != nil {
		return err
	}
	m.front = side{app: filepath.Join(w.root, "srv", m.name), unit: w.mgr.Unit(m.name + "@.service")}
	unit := fmt.Sprintf("[Unit]\nStartLimitIntervalSec=0\n[Service]\nEnvironmentFile=%s/%s-%%i.env\nExecStart=%s -addr ${ADDR} -dir %s/current-%%i\nRestart=no\n",
		w.root, m.name, w.appBin, m.front.app)
	if err := os.WriteFile(filepath.Join(w.mgr.UnitDir, m.front.unit), []byte(unit), 0o644); err != nil {
		return err
	}
	for colour, port := range map[string]int{"blue": blue, "green": green} {
		env := fmt.Sprintf("ADDR=127.0.0.1:%d\n", port)
		if err := os.WriteFile(filepath.Join(w.root, m.name+"-"+colour+".env"), []byte(env), 0o644); err != nil {
			return err
		}
	}
	proxyYAML, frontAddr, err := w.startProxy(m.name, fmt.Sprintf("127.0.0.1:%d", blue))
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
          blue: 127.0.0.1:%d
          green: 127.0.0.1:%d
          drain: %s
%s        health_check:
          url: http://127.0.0.1:%d/health
          interval: 50ms
          timeout: 1s
`, m.name, w.origin, m.front.app, m.front.unit, blue, green, w.drain, proxyYAML, blue)
	if why := w.refused(m.name, m.envYAML); why != "" {
		m.skip = "fraisier's config refuses this restart: blue_green environment (" + why + ")"
	}
	return nil
}

// startProxy starts nginx (mode blue_green) or Caddy (blue_green_caddy)
// sending traffic to initial, and returns the environment's proxy lines
// and the proxy's address. The proxy is stopped when the run ends.
func (w *world) startProxy(name, initial string) (yaml, addr string, err error) {
	if name == "blue_green_caddy" {
		c, err := proxy.RunCaddy(w.ctx, "hello", initial)
		if err != nil {
			return "", "", err
		}
		w.closers = append(w.closers, c.Close)
		return fmt.Sprintf("          caddy:\n            admin: %s\n            id: %s\n", c.Admin, c.ID), c.Addr, nil
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
