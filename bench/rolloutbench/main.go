package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// options are the benchmark's flags.
type options struct {
	hosts    int
	batches  []int
	rollouts int
	// rollouts1 is rollouts for batch size 1, the longest.
	rollouts1 int
	singles   int
	grow      int
	target    time.Duration
	maxConns  int
}

func main() {
	var (
		o       options
		batches string
	)
	flag.IntVar(&o.hosts, "hosts", 100, "simulated hosts, each an in-process node")
	flag.StringVar(&batches, "batches", "1,10,25", "batch sizes, comma-separated")
	flag.IntVar(&o.rollouts, "rollouts", 2, "measured rollouts per batch size above 1 and database")
	flag.IntVar(&o.rollouts1, "rollouts1", 1, "measured rollouts of batch size 1 per database (the longest: one host after the other)")
	flag.IntVar(&o.singles, "singles", 5, "single-host deploys per database (the baseline)")
	flag.IntVar(&o.grow, "grow", 100_000, "past deployments of other fraises in the grown database, and as many past rollout steps (0: fresh database only)")
	flag.DurationVar(&o.target, "target", 50*time.Millisecond, "the coordination overhead per host to stay under")
	flag.IntVar(&o.maxConns, "max-connections", 1000, "PostgreSQL's max_connections (each node holds up to 5: see the report)")
	flag.Parse()
	for _, s := range strings.Split(batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "rolloutbench: -batches: %q is not a batch size\n", s)
			os.Exit(2)
		}
		o.batches = append(o.batches, n)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "rolloutbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if err := raiseMaxConnections(ctx, cluster, o.maxConns); err != nil {
		return err
	}
	w, err := newWorld(ctx, cluster, o)
	if err != nil {
		return err
	}
	defer w.close()
	var phases []phaseResult
	fresh, err := w.phase("fresh", 0)
	if err != nil {
		return err
	}
	phases = append(phases, fresh)
	if o.grow > 0 {
		grown, err := w.phase("grown", o.grow)
		if err != nil {
			return err
		}
		phases = append(phases, grown)
	}
	report(os.Stdout, o, phases)
	fmt.Printf("\nwhole run: %s\n", time.Since(start).Round(time.Second))
	return nil
}

// raiseMaxConnections sets the cluster's max_connections to n and
// restarts it: the test cluster allows 300, fewer than 100 nodes can hold.
func raiseMaxConnections(ctx context.Context, c *pgtest.Cluster, n int) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres", ""))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET max_connections = %d", n))
	conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("set max_connections: %w", err)
	}
	if err := c.StopServer(ctx, false); err != nil {
		return err
	}
	return c.StartServer(ctx)
}
