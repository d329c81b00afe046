package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// phaseResult is what one database (fresh or grown) measured.
type phaseResult struct {
	name        string
	history     string
	singleWall  []time.Duration // enqueue to finished, one host
	singleSteps []time.Duration // the engine's own time (duration_ms)
	rollouts    map[int][]rolloutFigures
	c           *counters
	beatsPerSec float64
	peak        [3]int // connections: all, LISTEN, running a statement
	notes       int64
}

// rolloutFigures is one measured rollout.
type rolloutFigures struct {
	wall, steps   time.Duration
	batches       int
	notifications int64
	advances      int64
	claims        int64
	// cpu is the CPU time PostgreSQL, the nodes and git used meanwhile.
	cpu cpuTimes
}

// overheadPerHost is (the rollout's time − its steps' own time) / hosts.
func (f rolloutFigures) overheadPerHost(hosts int) time.Duration {
	return (f.wall - f.steps) / time.Duration(hosts)
}

// phase runs the nodes against the state database, grown first to grow
// past deployments when grow > 0, and measures single-host deploys and
// the rollouts of every batch size.
func (w *world) phase(name string, grow int) (phaseResult, error) {
	res := phaseResult{name: name, rollouts: map[int][]rolloutFigures{}, c: &counters{}, history: "empty"}
	if err := w.usePhase(name); err != nil {
		return res, err
	}
	if grow > 0 {
		fmt.Printf("growing the state database (%d past deployments, as many rollout steps)...\n", grow)
		took, what, err := w.growHistory(grow)
		if err != nil {
			return res, err
		}
		res.history = what
		fmt.Printf("grown in %s: %s\n", took.Round(100*time.Millisecond), what)
	}
	wt, err := watch(w.ctx, w.url)
	if err != nil {
		return res, err
	}
	defer wt.close()
	w.watcher = wt
	started := time.Now()
	nodes, err := w.startNodes(res.c)
	if err != nil {
		return res, err
	}
	fmt.Printf("%s database: %d nodes up in %s\n", name, len(nodes), time.Since(started).Round(10*time.Millisecond))
	err = w.measure(nodes, &res)
	beats0 := res.c.beats.Load()
	stopNodes(nodes)
	res.beatsPerSec = float64(beats0) / time.Since(started).Seconds()
	res.peak[0], res.peak[1], res.peak[2] = wt.peaks()
	res.notes = wt.notifications.Load()
	return res, err
}

// measure runs, on running nodes, a warm-up rollout (every host's first
// checkout), the single-host deploys, then the measured rollouts.
func (w *world) measure(nodes []*node, res *phaseResult) error {
	env, err := nodes[0].runner.CurrentConfig().Lookup("hello", "production")
	if err != nil {
		return err
	}
	policy, ok := queue.RolloutPolicy(env)
	if !ok {
		return fmt.Errorf("hello/production has no rollout policy")
	}
	if _, err := w.rollout(policy, slices.Max(w.o.batches), nil); err != nil {
		return fmt.Errorf("warm-up rollout: %w", err)
	}
	for range w.o.singles {
		wall, steps, err := w.single(w.hosts[0])
		if err != nil {
			return err
		}
		res.singleWall, res.singleSteps = append(res.singleWall, wall), append(res.singleSteps, steps)
	}
	for _, b := range w.o.batches {
		n := w.o.rollouts
		if b == 1 {
			n = w.o.rollouts1
		}
		for range n {
			f, err := w.rollout(policy, b, res.c)
			if err != nil {
				return err
			}
			res.rollouts[b] = append(res.rollouts[b], f)
			fmt.Printf("  batch %d: %s, steps %s, overhead %.1f ms/host, %d notifications, %d advance passes\n",
				b, f.wall.Round(time.Millisecond), f.steps.Round(time.Millisecond), ms(f.overheadPerHost(len(w.hosts))),
				f.notifications, f.advances)
		}
	}
	return nil
}

// single deploys a new commit to one host (env@host, as fraisier deploy
// hello production@web-001 queues it) and returns the time from queueing
// to the recorded end, and the engine's own time.
func (w *world) single(host string) (wall, steps time.Duration, err error) {
	sha, err := w.commit()
	if err != nil {
		return 0, 0, err
	}
	at := time.Now()
	q, err := w.db.Enqueue(w.ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "production@" + host},
		SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerCLI, Actor: "rolloutbench"})
	if err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		d, err := w.db.Deployment(w.ctx, q.DeploymentID)
		if err != nil {
			return 0, 0, err
		}
		if d.FinishedAt != nil {
			if d.Status != store.StatusSucceeded {
				return 0, 0, fmt.Errorf("single-host deploy %d: %s: %s", d.ID, d.Status, d.Error)
			}
			return d.FinishedAt.Sub(at), time.Duration(d.DurationMS) * time.Millisecond, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("single-host deploy %d did not end within a minute", q.DeploymentID)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
