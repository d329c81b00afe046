package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

func main() {
	bin := flag.String("bin", "bin/fraisier", "fraisier binary")
	runs := flag.Int("runs", 7, "deployments of each kind")
	keep := flag.Bool("keep", false, "keep the work directory and the user manager running after the runs, for profiling by hand, until interrupted")
	flag.Parse()
	if err := run(context.Background(), *bin, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "deploybench:", err)
		os.Exit(1)
	}
}

type side struct {
	app, unit string
	port      int
}

func run(ctx context.Context, bin string, runs int, keep bool) error {
	bin, _ = filepath.Abs(bin)
	script, _ := filepath.Abs("bench/deploy-by-hand.sh")
	root, err := os.MkdirTemp("", "fraisier-deploybench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	mgr, err := tsystemd.Start(ctx)
	if err != nil {
		return err
	}
	defer mgr.Close(context.Background())

	appBin := filepath.Join(root, "httpapp")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", appBin, "./internal/testenv/httpapp").CombinedOutput(); err != nil {
		return fmt.Errorf("build httpapp: %v\n%s", err, out)
	}
	env := append(os.Environ(), mgr.Env()...)
	env = append(env, "HOME="+filepath.Join(root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
	sh := func(dir string, args ...string) error {
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Dir, c.Env = dir, env
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	origin, work := filepath.Join(root, "origin.git"), filepath.Join(root, "work")
	if err := sh(root, "git", "init", "-q", "--bare", "-b", "main", origin); err != nil {
		return err
	}
	if err := sh(root, "git", "clone", "-q", origin, work); err != nil {
		return err
	}
	version := 0
	push := func() error {
		version++
		// A small repository: the service's files and some source.
		os.WriteFile(filepath.Join(work, "VERSION"), []byte(fmt.Sprintf("v%d\n", version)), 0o644)
		os.WriteFile(filepath.Join(work, "behaviour"), []byte("healthy\n"), 0o644)
		for i := 0; i < 50; i++ {
			os.MkdirAll(filepath.Join(work, "src"), 0o755)
			os.WriteFile(filepath.Join(work, "src", fmt.Sprintf("f%02d.py", i)), []byte(strings.Repeat("x = 1\n", 40)), 0o644)
		}
		if err := sh(work, "git", "add", "-A"); err != nil {
			return err
		}
		if err := sh(work, "git", "commit", "-q", "-m", fmt.Sprintf("v%d", version)); err != nil {
			return err
		}
		return sh(work, "git", "push", "-q", "origin", "HEAD:main")
	}

	mk := func(name string) (side, error) {
		s := side{app: filepath.Join(root, "srv", name), unit: mgr.Unit(name + ".service")}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return s, err
		}
		s.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		unit := fmt.Sprintf("[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s/current\nRestart=no\n", appBin, s.port, s.app)
		os.MkdirAll(mgr.UnitDir, 0o755)
		return s, os.WriteFile(filepath.Join(mgr.UnitDir, s.unit), []byte(unit), 0o644)
	}
	byHand, err := mk("byhand")
	if err != nil {
		return err
	}
	fr, err := mk("fraisier")
	if err != nil {
		return err
	}
	if _, err := mgr.Systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	cfg := filepath.Join(root, "fraises.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state:
  path: %s/state.db
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        keep_releases: 100
        systemd_service: %s
        health_check:
          url: http://127.0.0.1:%d/health
          interval: 50ms
          timeout: 1s
`, root, origin, fr.app, fr.unit, fr.port)), 0o644)
	env = append(env, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE=")
	timed := func(args ...string) (time.Duration, error) {
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Env, c.Dir = env, root
		start := time.Now()
		out, err := c.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start), nil
	}

	var scriptT, fraisierT, rollbackT, restartT []time.Duration
	// One unmeasured round each: first clone, first mirror.
	for i := 0; i <= runs; i++ {
		if err := push(); err != nil {
			return err
		}
		// Who goes first alternates: the second runs while the first's
		// service is still settling, and neither side should always pay
		// for that.
		var ds, df time.Duration
		runScript := func() (err error) {
			ds, err = timed(script, origin, byHand.app, byHand.unit, fmt.Sprintf("http://127.0.0.1:%d/health", byHand.port))
			return err
		}
		runFraisier := func() (err error) {
			df, err = timed(bin, "deploy", "hello", "production")
			return err
		}
		first, second := runScript, runFraisier
		if i%2 == 1 {
			first, second = runFraisier, runScript
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		if i > 0 {
			scriptT, fraisierT = append(scriptT, ds), append(fraisierT, df)
		}
	}
	// Rollback against the service's own restart-and-become-healthy time.
	for i := 0; i < runs; i++ {
		dr, err := timed(bin, "rollback", "hello", "production")
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := mgr.Systemctl(ctx, "restart", fr.unit); err != nil {
			return err
		}
		if err := waitHealthy(fmt.Sprintf("http://127.0.0.1:%d/health", fr.port)); err != nil {
			return err
		}
		restartT = append(restartT, time.Since(start))
		rollbackT = append(rollbackT, dr)
		// Go forward again so that the next rollback has somewhere to go.
		if _, err := timed(bin, "rollback", "hello", "production", "--to", lastRelease(fr.app)); err != nil {
			return err
		}
	}
	ms, mf, mr, mre := median(scriptT), median(fraisierT), median(rollbackT), median(restartT)
	fmt.Printf("deploy of a small repository (%d runs each, medians):\n", runs)
	fmt.Printf("  by hand (bench/deploy-by-hand.sh)  %7.1f ms\n", msf(ms))
	// Each round deploys both sides back to back, so the ratio within a
	// round shares that moment's machine load; its median is the figure
	// the target is judged on. The ratio of the medians is shown too.
	var ratios []float64
	for i := range scriptT {
		ratios = append(ratios, float64(fraisierT[i])/float64(scriptT[i]))
	}
	sort.Float64s(ratios)
	fmt.Printf("  fraisier deploy                    %7.1f ms   %.2f× the script (median of the %d paired rounds' ratios; target ≤ 1.20×); ratio of the medians %.2f×\n",
		msf(mf), ratios[len(ratios)/2], len(ratios), float64(mf)/float64(ms))
	fmt.Printf("rollback with the releases layout:\n")
	fmt.Printf("  systemctl restart + health poll    %7.1f ms\n", msf(mre))
	fmt.Printf("  fraisier rollback                  %7.1f ms   adds %.1f ms (target ≤ 150 ms)\n", msf(mr), msf(mr-mre))
	if keep {
		// What a profiler needs to repeat either side by hand.
		fmt.Printf("kept: %s\n  env:", root)
		for _, e := range env[len(os.Environ()):] {
			fmt.Printf(" %q", e)
		}
		fmt.Printf("\n  script: %s %s %s %s http://127.0.0.1:%d/health\n", script, origin, byHand.app, byHand.unit, byHand.port)
		fmt.Printf("  push: git -C %s commit --allow-empty -qm x && git -C %s push -q origin HEAD:main\n", work, work)
		fmt.Println("interrupt to clean up")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	return nil
}

func waitHealthy(url string) error {
	c := http.Client{Timeout: time.Second}
	for i := 0; i < 400; i++ {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s never became healthy", url)
}

// lastRelease is the newest release directory: the one the forward
// rollback returns to.
func lastRelease(app string) string {
	entries, _ := os.ReadDir(filepath.Join(app, "releases"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names[len(names)-1]
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
