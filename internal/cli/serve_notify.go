package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forgestatus"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/version"
)

// notifications is serve's notification side: the notifier the queue and
// the server report to, and the sender that empties the outbox.
type notifications struct {
	cfg      atomic.Pointer[config.Config]
	notifier *notify.Notifier
	sender   *notify.Sender
	status   *notify.StatusSender
	metrics  *notify.Metrics
	// pending are the deployments whose messages are being queued.
	pending sync.WaitGroup
}

// stuckEvery is how often serve looks for locks held and requests queued
// too long.
const stuckEvery = time.Minute

func newNotifications(cfg *config.Config, db *store.DB, log *slog.Logger) *notifications {
	n := &notifications{metrics: notify.NewMetrics()}
	n.cfg.Store(cfg)
	current := func() *config.Config { return n.cfg.Load() }
	n.notifier = &notify.Notifier{Store: db, Config: current, Subjects: commitSubjects(current), Log: log, Metrics: n.metrics}
	n.sender = &notify.Sender{Store: db, Config: current, Log: log, Metrics: n.metrics}
	n.status = &notify.StatusSender{Store: db, Config: current, Log: log, Client: forgestatus.New("fraisier/" + version.Version)}
	for _, err := range notify.CheckTargets(cfg) {
		log.Error("notification target unusable; its messages will be given up", "err", err)
	}
	return n
}

// finished is the queue's OnFinish for notifications: observe, then
// queue the messages of the deployment that ended, beside the worker (the
// commit subjects come from git), which moves on at once.
func (n *notifications) finished(observe func(queue.Finished)) func(queue.Finished) {
	return func(f queue.Finished) {
		observe(f)
		n.pending.Add(1)
		go func() {
			defer n.pending.Done()
			n.notifier.Deployment(context.Background(), f.Result.DeploymentID, f.Duration)
			n.sender.Wake()
			n.notifier.ForgeStatus(context.Background(), f.Result.DeploymentID, forgestatus.State(f.Result.Status))
			n.status.Wake()
		}()
	}
}

// started is the queue's OnStart: the forge hears that the deployment
// runs. It is queued before the deployment runs, so that it is sent before
// the deployment's end.
func (n *notifications) started(d store.Deployment) {
	n.notifier.ForgeStatus(context.Background(), d.ID, forgestatus.Running)
	n.status.Wake()
}

// run runs the sender and the watch until ctx is done.
func (n *notifications) run(ctx context.Context) {
	go n.notifier.Watch(ctx, stuckEvery)
	go n.status.Run(ctx)
	n.sender.Run(ctx)
}

// commitSubjects reads commit subjects from fraisier's git mirror of an
// environment (<state dir>/mirrors/<fraise>/<environment>), when there is
// one; never from the network.
func commitSubjects(cfg func() *config.Config) notify.Subjects {
	return func(ctx context.Context, fraise, environment string, shas ...string) map[string]string {
		out := map[string]string{}
		c := cfg()
		env, err := c.Lookup(fraise, environment)
		if err != nil || c.State.Dir == "" || env.Layout == config.LayoutInplace || env.SharesCodeWith != "" {
			return out
		}
		mirror := filepath.Join(c.State.Dir, "mirrors", fraise, environment)
		if st, err := os.Stat(mirror); err != nil || !st.IsDir() {
			return out
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		repo, err := git.OpenMirror(ctx, mirror, env.GitRepo, git.Options{Timeout: 5 * time.Second})
		if err != nil {
			return out
		}
		for _, sha := range shas {
			if !git.IsSHA(sha) {
				continue
			}
			if commits, err := repo.Log(ctx, "", sha, 1); err == nil && len(commits) == 1 {
				out[sha] = commits[0].Subject
			}
		}
		return out
	}
}
