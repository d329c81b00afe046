package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// secret is the webhook secret both servers check: a realistic length.
const secret = "webhookbench: a webhook secret of realistic length, 40+ bytes"

type targets struct {
	rate  float64
	p99   time.Duration
	rss   int64 // bytes
	ratio float64
	// redelivered: the rate with redeliveries over the same binary's rate
	// with unique ids in the same round, at least.
	redelivered float64
	// hwm and idleRSS: the server's VmHWM over the bursts, and its VmRSS
	// once idle after them, under (bytes).
	hwm, idleRSS int64
}

// options are the program's flags.
type options struct {
	bin, against string // the binary measured, and an older one beside it
	conns        int
	warmup       time.Duration
	duration     time.Duration
	rounds       int
	keep, held   bool
	redeliver    float64 // fraction of deliveries sent again under their id
	grow         int     // webhook events in the state database before the load
	dir          string  // where the grown database is kept
	bursts       int
	burst, pause time.Duration
	idle         time.Duration
	t            targets
}

func main() {
	var (
		o        options
		deploys  string
		rssMB    int64
		hwmMB    int64
		idleMB   int64
		baseline = flag.String("baseline-listen", "", "internal: serve the baseline handler on this address (the program starts itself with it)")
	)
	flag.StringVar(&o.bin, "bin", "bin/fraisier", "fraisier binary to measure (make bench builds it)")
	flag.StringVar(&o.against, "against", "", "an older fraisier binary measured beside -bin in every round and burst, for a before and after in one run (it must know the state database's schema)")
	flag.IntVar(&o.conns, "conns", 32, "keep-alive connections")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measured window")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured window of each server")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of baseline and fraisier, in an order that turns each round")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (state database, logs, origin) for inspection")
	flag.StringVar(&deploys, "deploys", "held", "what the queue does during the load: held (one deployment runs throughout, sleeping in its install step; every push replaces the request waiting behind it) or continuous (real deployments back to back, competing for the cores)")
	flag.Float64Var(&o.redeliver, "redeliver", 0, "fraction of deliveries sent again under an id sent before, with its body (a forge's Redeliver button); fraisier is then also measured with unique ids in each round, and the two compared")
	flag.IntVar(&o.grow, "grow", 0, "webhook events (and a tenth as many deployments) in the state database before the load, made once by the benchmarks' generator (bench/grow) and kept in -dir")
	flag.StringVar(&o.dir, "dir", "bench/out", "where the grown state database is kept")
	flag.IntVar(&o.bursts, "bursts", 0, "after the rounds, bursts of load on one fraisier process (on the grown database), for its memory: VmHWM over the bursts, VmRSS once idle")
	flag.DurationVar(&o.burst, "burst", 15*time.Second, "length of each burst")
	flag.DurationVar(&o.pause, "pause", 5*time.Second, "pause between bursts")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "idle time after the bursts before the resident memory is read")
	flag.Float64Var(&o.t.rate, "min-rate", 7000, "target: fraisier's requests/s at least")
	flag.DurationVar(&o.t.p99, "max-p99", 20*time.Millisecond, "target: fraisier's p99 under")
	flag.Int64Var(&rssMB, "max-rss-mb", 40, "target: fraisier's peak resident memory under, in MB")
	flag.Float64Var(&o.t.ratio, "min-ratio", 0.65, "target: fraisier's rate over the baseline's, at least")
	flag.Float64Var(&o.t.redelivered, "min-redelivered-ratio", 0.9, "target: fraisier's rate with -redeliver over its rate with unique ids, at least")
	flag.Int64Var(&hwmMB, "max-hwm-mb", 48, "target: fraisier's VmHWM over the bursts under, in MB")
	flag.Int64Var(&idleMB, "max-idle-rss-mb", 40, "target: fraisier's VmRSS once idle after the bursts under, in MB")
	flag.Parse()
	o.t.rss, o.t.hwm, o.t.idleRSS = rssMB<<20, hwmMB<<20, idleMB<<20
	o.held = deploys == "held"
	if *baseline != "" {
		if err := serveBaseline(*baseline, []byte(os.Getenv("WEBHOOKBENCH_SECRET"))); err != nil {
			fmt.Fprintln(os.Stderr, "webhookbench baseline:", err)
			os.Exit(1)
		}
		return
	}
	if deploys != "held" && deploys != "continuous" {
		fmt.Fprintf(os.Stderr, "webhookbench: -deploys %q: use held or continuous\n", deploys)
		os.Exit(2)
	}
	if o.redeliver < 0 || o.redeliver >= 1 {
		fmt.Fprintf(os.Stderr, "webhookbench: -redeliver %g: use a fraction in [0, 1)\n", o.redeliver)
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "webhookbench:", err)
		os.Exit(1)
	}
}

// measured is one server under one round of load.
type measured struct {
	name      string
	round     int
	bin       string  // the fraisier binary, "" for the baseline
	redeliver float64 // the load's fraction of redeliveries
	load      loadResult
	maxRSS    int64 // bytes, the largest VmRSS sampled
	hwm       int64 // bytes, VmHWM at the end of the load
	recorded  int64 // fraisier: webhook events the load added to the state database
	outcomes  string
	deploys   string
	logBytes  int64
	isBaseRun bool
}

// measuredServer is one server a round measures.
type measuredServer struct {
	bin       string // "" for the baseline
	redeliver float64
}

func run(ctx context.Context, o options) error {
	bins := []string{o.bin}
	if o.against != "" {
		bins = append(bins, o.against)
	}
	for i, b := range bins {
		abs, err := filepath.Abs(b)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", b, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("fraisier binary (run make build, or make bench): %w", err)
		}
		bins[i] = abs
	}
	o.bin = bins[0]
	if o.against != "" {
		o.against = bins[1]
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program for the baseline: %w", err)
	}
	root, err := os.MkdirTemp("", "fraisier-webhookbench.")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if o.keep {
		fmt.Println("work directory (kept):", root)
	} else {
		defer os.RemoveAll(root)
	}
	w, err := setup(ctx, root)
	if err != nil {
		return err
	}
	w.held = o.held
	if o.grow > 0 {
		if w.grown, err = grownDB(ctx, o.dir, o.grow); err != nil {
			return err
		}
		w.grownEvents, w.grownDeployments = int64(o.grow), int64(o.grow/10)
	}
	bodies, err := makeBodies(256, []byte(secret))
	if err != nil {
		return err
	}
	printSetup(o, bodies)
	all, err := rounds(ctx, o, self, bins, w, bodies)
	if err != nil {
		return err
	}
	if err := report(all, o); err != nil {
		return err
	}
	if o.bursts > 0 {
		return memory(ctx, o, bins, w, bodies)
	}
	return nil
}

func printSetup(o options, b *bodies) {
	queue := "one deployment held running throughout (its install step sleeps); each push replaces the request waiting behind it"
	if !o.held {
		queue = "real deployments run back to back from a local origin (their work competes for the cores)"
	}
	fmt.Printf("%d connections, %s warm-up then %s measured per server, %d rounds; bodies %d–%d bytes; GOMAXPROCS of each process: %d CPUs\nfraisier's queue: %s\n",
		o.conns, o.warmup, o.duration, o.rounds, b.minLen, b.maxLen, numCPU(), queue)
	if o.grow > 0 {
		fmt.Printf("state database: grown to %d webhook events and %d deployments before each server starts\n", o.grow, o.grow/10)
	}
	if o.redeliver > 0 {
		fmt.Printf("redeliveries: %.0f%% of deliveries sent again under an id the connection sent before, with its body; fraisier is measured with and without them\n", 100*o.redeliver)
	}
	if o.against != "" {
		fmt.Printf("against: %s, beside %s in every round\n", o.against, o.bin)
	}
}

// rounds measures every server once a round, in an order that turns by
// one each round so that none always runs first or last.
func rounds(ctx context.Context, o options, self string, bins []string, w *work, b *bodies) ([]measured, error) {
	servers := []measuredServer{{}}
	for _, bin := range bins {
		servers = append(servers, measuredServer{bin: bin})
		if o.redeliver > 0 {
			servers = append(servers, measuredServer{bin: bin, redeliver: o.redeliver})
		}
	}
	var all []measured
	for r := 1; r <= o.rounds; r++ {
		for i := range servers {
			s := servers[(i+r-1)%len(servers)]
			var (
				m   measured
				err error
			)
			if s.bin == "" {
				m, err = measureBaseline(ctx, self, w.root, b, o.conns, o.warmup, o.duration)
			} else {
				m, err = measureFraisier(ctx, s, w, r, b, o)
			}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", r, serverName(s, o), err)
			}
			m.round = r
			all = append(all, m)
		}
	}
	return all, nil
}

// serverName is how the report names a server.
func serverName(s measuredServer, o options) string {
	if s.bin == "" {
		return "baseline (read, HMAC, decode)"
	}
	name := "fraisier serve"
	if s.bin == o.against {
		name = "against: fraisier serve"
	}
	if s.redeliver > 0 {
		name += fmt.Sprintf(", %.0f%% redelivered", 100*s.redeliver)
	}
	return name
}
