package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

func main() {
	var (
		bin     = flag.String("bin", "bin/fraisier", "fraisier binary")
		modes   = flag.String("modes", "plain,socket,blue_green,blue_green_caddy,blue_green_caddy_link,blue_green_nginx_link", "restart modes to measure, in order (blue_green: behind nginx, blue_green_caddy: behind Caddy, switched through its admin API; blue_green_caddy_link, blue_green_nginx_link: Caddy or nginx dialing blue_green.link; empty: none, push-to-live only)")
		keep    = flag.Bool("link-keepalive", false, "blue_green_caddy_link's Caddy keeps its connections to the link alive (the example turns that off)")
		rounds  = flag.Int("rounds", 20, "deploys, and as many rollbacks, per mode")
		rate    = flag.Int("rate", 200, "requests a second (open loop: sent on schedule, whatever the answers)")
		every   = flag.Int("slow-every", 20, "one request in this many is a slow one (0: none)")
		slowFor = flag.Duration("slow-for", 1500*time.Millisecond, "how long the app takes to answer a slow request")
		timeout = flag.Duration("timeout", 10*time.Second, "a request without its whole answer after this long counts as failed")
		pushes  = flag.Int("pushes", 7, "push-to-live rounds (0: skip push-to-live)")
		verbose = flag.Bool("v", false, "print each push-to-live round")
	)
	flag.Parse()
	spec := loadSpec{rate: *rate, slowEvery: *every, slowFor: *slowFor, timeout: *timeout}
	if *rate < 1 || *rounds < 1 || *every < 0 || *pushes < 0 {
		fmt.Fprintln(os.Stderr, "zdbench: -rate and -rounds must be at least 1, -slow-every and -pushes at least 0")
		os.Exit(2)
	}
	var names []string
	if *modes != "" {
		names = strings.Split(*modes, ",")
	}
	if err := run(context.Background(), *bin, names, spec, *rounds, *pushes, *verbose, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "zdbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, names []string, spec loadSpec, rounds, pushes int, verbose, linkKeepAlive bool) error {
	w := &world{ctx: ctx, drain: (spec.slowFor + time.Second).String(), linkKeepAlive: linkKeepAlive}
	defer func() {
		for _, c := range w.closers {
			c()
		}
	}()
	w.bin, _ = filepath.Abs(bin)
	w.script, _ = filepath.Abs("bench/deploy-by-hand.sh")
	var err error
	if w.root, err = os.MkdirTemp("", "fraisier-zdbench."); err != nil {
		return err
	}
	defer os.RemoveAll(w.root)
	if w.mgr, err = tsystemd.Start(ctx); err != nil {
		return err
	}
	defer w.mgr.Close(context.Background())
	if err := w.prepare(); err != nil {
		return err
	}
	var envs []string
	for _, name := range names {
		m := &mode{name: strings.TrimSpace(name)}
		if err := w.prepareMode(m); err != nil {
			return fmt.Errorf("prepare %s: %w", m.name, err)
		}
		w.modes = append(w.modes, m)
		if m.skip == "" {
			envs = append(envs, w.modeEnvironment(m))
		}
	}
	if err := w.start(envs); err != nil {
		return err
	}
	for _, m := range w.modes {
		if m.skip == "" {
			if err := w.measure(m, spec, rounds); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
	}
	if len(w.modes) > 0 {
		reportLoad(w.modes, spec, rounds)
	}
	if pushes == 0 {
		return nil
	}
	live, err := w.pushToLive(pushes)
	if err != nil {
		return err
	}
	reportLive(live, verbose)
	return nil
}

// start writes and checks fraises.yaml, starts the socket units, and
// deploys a first version everywhere (unmeasured: first clones, first
// starts).
func (w *world) start(envs []string) error {
	cfg := filepath.Join(w.root, "fraises.yaml")
	if err := w.writeConfig(cfg, envs); err != nil {
		return err
	}
	if err := w.validate(cfg); err != nil {
		return fmt.Errorf("fraisier config validate refuses the benchmark's configuration:\n%w", err)
	}
	w.env = append(w.env, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE=")
	if _, err := w.mgr.Systemctl(w.ctx, "daemon-reload"); err != nil {
		return err
	}
	if _, _, err := w.push(); err != nil {
		return err
	}
	for _, m := range w.modes {
		if m.skip != "" {
			continue
		}
		if m.name == "socket" {
			if _, err := w.mgr.Systemctl(w.ctx, "start", w.mgr.Unit("socket.socket")); err != nil {
				return err
			}
		}
		if err := w.fraisier("deploy", "hello", m.name); err != nil {
			return err
		}
	}
	return nil
}

func reportLoad(modes []*mode, spec loadSpec, rounds int) {
	slow := "no slow ones"
	if spec.slowEvery > 0 {
		slow = fmt.Sprintf("one in %d takes %s", spec.slowEvery, spec.slowFor)
	}
	fmt.Printf("zero downtime: %d requests/s, open loop, a new connection each (%s; each fails after %s), during %d deploys and %d rollbacks per mode:\n",
		spec.rate, slow, spec.timeout, rounds, rounds)
	for _, m := range modes {
		if m.skip != "" {
			fmt.Printf("  %-21s not measured: %s\n", m.name, m.skip)
			continue
		}
		r := m.res
		target := "target 0: met"
		switch {
		case m.name == "plain":
			target = "the baseline"
		case r.failed > 0:
			target = "target 0: MISSED"
		}
		fmt.Printf("  %-21s failed %5d of %6d requests (%d of %d slow ones)   %s\n", m.name, r.failed, r.sent, r.slowFailed, r.slowSent, target)
		if m.note != "" {
			fmt.Printf("                   run as: %s\n", m.note)
		}
		fmt.Printf("                   once the front first answered the new version during a deploy, %d of %d answers came from the old one\n", m.stale, m.afterNew)
		if m.caddy != nil {
			fmt.Printf("                   Caddy loaded a configuration %d times during the rounds (its log's \"autosaved config\")\n", m.reloads)
		}
		if r.failed > 0 {
			var kinds []string
			for _, k := range failureKinds {
				if r.byKind[k] > 0 {
					kinds = append(kinds, fmt.Sprintf("%s %d", k, r.byKind[k]))
				}
			}
			fmt.Printf("                   %s; failed of those sent during deploys %d of %d, rollbacks %d of %d, between them %d of %d; first: %s\n",
				strings.Join(kinds, ", "), r.failedIn["deploy"], r.sentIn["deploy"], r.failedIn["rollback"], r.sentIn["rollback"],
				r.failed-r.failedIn["deploy"]-r.failedIn["rollback"], r.sent-r.sentIn["deploy"]-r.sentIn["rollback"], r.example)
		}
		fmt.Printf("                   slowest answers: short %.0f ms, slow %.0f ms; generator's worst lag behind schedule %.1f ms\n",
			msf(r.maxShort), msf(r.maxSlow), msf(r.lateMax))
	}
}

func reportLive(r liveResult, verbose bool) {
	var ratios []float64
	for i := range r.floor {
		ratios = append(ratios, float64(r.fraisier[i])/float64(r.floor[i]))
		if verbose {
			fmt.Printf("  round %d: floor %.1f ms, fraisier %.1f ms, %.2f×\n", i+1, msf(r.floor[i]), msf(r.fraisier[i]), ratios[i])
		}
	}
	slices.Sort(ratios)
	fmt.Printf("push-to-live, a plain restart on both sides (%d pushes each, medians):\n", len(r.floor))
	fmt.Printf("  floor: fetch, release, restart, first answer by hand (bench/deploy-by-hand.sh)  %7.1f ms\n", msf(median(r.floor)))
	fmt.Printf("  fraisier serve: signed GitHub push to the new commit answering                 %7.1f ms   %.2f× the floor (median of the %d paired rounds' ratios; target ≤ 1.30×); ratio of the medians %.2f×\n",
		msf(median(r.fraisier)), ratios[len(ratios)/2], len(ratios), float64(median(r.fraisier))/float64(median(r.floor)))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
