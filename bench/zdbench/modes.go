package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv/proxy"
)

// mode is one restart mode under load: its environment of the fraise
// hello (named after the mode), the front the load goes through, and what
// the load saw.
type mode struct {
	name  string // plain, socket, blue_green (nginx), blue_green_caddy, blue_green_caddy_link or blue_green_nginx_link
	front side   // the environment's app, unit and the port the load uses
	// restart is the environment's restart: field; "" when fraisier's
	// configuration does not know the field or the value yet.
	restart string
	note    string // how the mode was run, when not as its name says
	skip    string // why it is not measured; "" when it is
	// envYAML is the environment's lines in fraises.yaml when
	// w.environment does not write them (blue/green).
	envYAML string
	res     *loadResult
	// caddy is the Caddy of blue_green_caddy_link, whose log says whether
	// anything reloaded it; reloads is how many times it loaded a
	// configuration during the rounds.
	caddy   *proxy.Caddy
	reloads int
	// afterNew counts the watcher's answers during deploys once the front
	// first answered the new version; stale, those from the old one.
	afterNew, stale int
}

// modeEnvironment is m's lines in fraises.yaml.
func (w *world) modeEnvironment(m *mode) string {
	if m.envYAML != "" {
		return m.envYAML
	}
	return w.environment(m.name, m.front, m.restart)
}

// prepareMode writes the units of m (and starts blue/green's proxy), and
// finds out whether fraisier's configuration knows its restart mode: a
// fraisier that does not restarts plain and socket plainly, and cannot
// measure blue/green.
func (w *world) prepareMode(m *mode) error {
	var err error
	switch m.name {
	case "plain":
		m.front, err = w.serviceUnit("plain", "", "")
	case "socket":
		m.front, err = w.socketUnits("socket")
	case "blue_green", "blue_green_caddy", "blue_green_caddy_link", "blue_green_nginx_link":
		return w.prepareBlueGreen(m)
	default:
		return fmt.Errorf("unknown mode %q (plain, socket, blue_green, blue_green_caddy, blue_green_caddy_link, blue_green_nginx_link)", m.name)
	}
	if err != nil {
		return err
	}
	if why := w.restartUnknown(m.name, m.front); why != "" {
		m.note = "systemctl restart (fraisier's config has no restart: field yet)"
		if m.name == "socket" {
			m.note = "socket unit, fraisier's plain restart (its config does not know restart: socket yet)"
		}
		return nil
	}
	m.restart = m.name
	return nil
}

// socketUnits writes a socket unit listening on a free loopback port and
// the service it hands the socket to; the socket is started once the
// manager has read them.
func (w *world) socketUnits(name string) (side, error) {
	sock := w.mgr.Unit(name + ".socket")
	s, err := w.serviceUnit(name, fmt.Sprintf("Requires=%s\nAfter=%s\n", sock, sock), "-systemd-socket")
	if err != nil {
		return s, err
	}
	text := fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n", s.port)
	return s, os.WriteFile(filepath.Join(w.mgr.UnitDir, sock), []byte(text), 0o644)
}

// restartUnknown returns the first line of fraisier config validate's
// refusal of an environment deploying s with restart: name, or "" when
// fraisier accepts it.
func (w *world) restartUnknown(name string, s side) string {
	return w.refused(name, w.environment(name, s, name))
}

// refused returns the first line of fraisier config validate's refusal of
// the environment env (its lines in fraises.yaml), or "" when fraisier
// accepts it.
func (w *world) refused(name, env string) string {
	path := filepath.Join(w.root, "probe-"+name+".yaml")
	if err := w.writeConfig(path, []string{env}); err != nil {
		return err.Error()
	}
	err := w.validate(path)
	if err == nil {
		return ""
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	return first
}

// measure runs rounds deploys and rollbacks of m under load, checking
// after each that the front answers with the version expected.
func (w *world) measure(m *mode, spec loadSpec, rounds int) error {
	g := newGenerator(spec, m.front.url())
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan *loadResult, 1)
	go func() { done <- g.run(ctx) }()
	loads := m.caddyLoads()
	err := w.rounds(m, g, rounds)
	m.reloads = m.caddyLoads() - loads
	// Let the last slow requests started during the rounds end.
	time.Sleep(spec.slowFor + time.Second)
	cancel()
	m.res = <-done
	return err
}

func (w *world) rounds(m *mode, g *generator, rounds int) error {
	time.Sleep(time.Second)
	for i := range rounds {
		version, _, err := w.push()
		if err != nil {
			return err
		}
		g.phase.Store("deploy")
		stop, seen := make(chan struct{}), make(chan [2]int, 1)
		go func() { seen <- watchStale(m.front.url(), version, stop) }()
		err = w.fraisier("deploy", "hello", m.name)
		close(stop)
		counts := <-seen
		m.afterNew, m.stale = m.afterNew+counts[0], m.stale+counts[1]
		g.phase.Store("between")
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if got := answer(m.front.url()); got != version {
			return fmt.Errorf("round %d: after the deploy of %s the front answers %q", i, version, got)
		}
		g.phase.Store("rollback")
		err = w.fraisier("rollback", "hello", m.name)
		g.phase.Store("between")
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if got := answer(m.front.url()); got == version || got == "" {
			return fmt.Errorf("round %d: after the rollback from %s the front answers %q", i, version, got)
		}
	}
	return nil
}

// watchStale asks base for its version every 20 ms until stop, each time
// on a new connection, and once it first answers version counts the
// answers after that, and those among them from another version: requests
// the old colour still served after the switch (a proxy reusing pooled
// connections to it, say).
func watchStale(base, version string, stop <-chan struct{}) [2]int {
	var counts [2]int
	switched := false
	for {
		select {
		case <-stop:
			return counts
		case <-time.After(20 * time.Millisecond):
		}
		got := answer(base)
		switch {
		case got == version:
			switched = true
			counts[0]++
		case switched && got != "":
			counts[0]++
			counts[1]++
		}
	}
}

// answer is the version base serves on /, or "" if it does not answer.
func answer(base string) string {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(base + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(b))
}
