package server_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2ECrashRecovery: fraisier serve killed with SIGKILL while it
// deploys two environments, one of which has a newer push waiting. The
// next start records both running deployments as interrupted. Production,
// whose newer push waited, deploys that push (the waiting request resumes)
// and is not queued again at the older commit; staging is queued again
// once, at its commit, linked to the same delivery, and deployed.
func TestE2ECrashRecovery(t *testing.T) {
	f := newE2E(t, e2eOptions{envs: map[string]string{"production": "main", "staging": "staging"}})
	srv := f.serve()
	f.hold()
	prod := f.push("main", 1)[0]
	stag := f.push("staging", 1)[0]
	p1 := f.hook("main", "", prod)
	s1 := f.hook("staging", "", stag)
	testenv.WaitFor(t, "both installs to start", 15*time.Second, func() bool {
		return f.installStarted(version("main", 1)) && f.installStarted(version("staging", 1))
	})
	prod2 := f.push("main", 1)[0]
	p2 := f.hook("main", prod, prod2)
	if p2.Deployments[0].Superseded != 0 {
		t.Fatalf("push to a target that runs a deployment superseded %d", p2.Deployments[0].Superseded)
	}

	srv.Signal(t, syscall.SIGKILL)
	srv.Wait(t, 10*time.Second)
	p1ID, s1ID, p2ID := p1.Deployments[0].DeploymentID, s1.Deployments[0].DeploymentID, p2.Deployments[0].DeploymentID
	for id, want := range map[int64]store.Status{p1ID: store.StatusRunning, s1ID: store.StatusRunning, p2ID: store.StatusQueued} {
		if d := f.deployment(id); d.Status != want {
			t.Fatalf("after SIGKILL, deployment %d is %s, want %s", id, d.Status, want)
		}
	}

	f.release()
	f.serve() // answers /ready once its recovery is done
	testenv.WaitFor(t, "the queue to drain after the restart", 30*time.Second, f.idle)
	for env, want := range map[string][2]string{"production": {prod2, version("main", 2)}, "staging": {stag, version("staging", 1)}} {
		if st, got := f.state(env), f.serving(env); st.CurrentSHA != want[0] || got != want[1] {
			t.Errorf("%s after the restart: at %s serving %q; want %s serving %s", env, st.CurrentSHA, got, want[0], want[1])
		}
	}

	for _, id := range []int64{p1ID, s1ID} {
		if d := f.deployment(id); d.Status != store.StatusInterrupted || !strings.Contains(d.Error, "interrupted") {
			t.Errorf("killed deployment %d: %s (%q), want interrupted", id, d.Status, d.Error)
		}
	}
	prodDs := f.deployments("production")
	if len(prodDs) != 2 || prodDs[1].ID != p2ID || prodDs[1].Status != store.StatusSucceeded || prodDs[1].NewSHA != prod2 ||
		prodDs[1].Trigger != store.TriggerWebhook || prodDs[1].WebhookID == nil || *prodDs[1].WebhookID != p2.WebhookEventID {
		t.Errorf("production: %s; want the interrupted %d, then the waiting request %d deployed at %s", describe(prodDs), p1ID, p2ID, prod2)
	}
	stagDs := f.deployments("staging")
	if len(stagDs) != 2 {
		t.Fatalf("staging: %s; want the interrupted deployment and one retry", describe(stagDs))
	}
	if r := stagDs[1]; r.Trigger != store.TriggerRequeue || r.Status != store.StatusSucceeded || r.NewSHA != stag ||
		r.WebhookID == nil || *r.WebhookID != s1.WebhookEventID {
		t.Errorf("staging retry: %+v; want a requeue, succeeded at %s, linked to webhook event %d", r, stag, s1.WebhookEventID)
	}
	hooks := f.webhooks()
	for _, a := range []hookAnswer{p1, s1, p2} {
		if e := hooks[a.DeliveryID]; e.Outcome != store.OutcomeAccepted {
			t.Errorf("webhook %s: %s, want accepted", a.DeliveryID, e.Outcome)
		}
	}
	if e := hooks[s1.DeliveryID]; len(e.DeploymentIDs) != 2 || e.DeploymentIDs[0] != s1ID || e.DeploymentIDs[1] != stagDs[1].ID {
		t.Errorf("staging's webhook event links %v, want %d and its retry %d", e.DeploymentIDs, s1ID, stagDs[1].ID)
	}
}

// TestE2EShutdown: SIGTERM while a deployment runs, with a short
// server.shutdown_grace. fraisier stops accepting at once, gives the
// deployment the grace period, then cancels it: it had not switched, so it
// ends failed and the old release still serves. The process exits 0 soon
// after the grace. The commit is queued again, unless a newer push waits
// for the target; either way, the next start deploys the newest commit.
func TestE2EShutdown(t *testing.T) {
	const grace = 2 * time.Second
	for _, tc := range []struct {
		name    string
		waiting bool // a newer push waits behind the running deployment
	}{
		{"alone", false},
		{"newer push waiting", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newE2E(t, e2eOptions{grace: grace.String()})
			srv := f.serve()
			v1 := f.push("main", 1)[0]
			f.hook("main", "", v1)
			f.waitDeployed("production", v1, version("main", 1), 30*time.Second)

			f.hold()
			v2 := f.push("main", 1)[0]
			a := f.hook("main", v1, v2)
			id := a.Deployments[0].DeploymentID
			testenv.WaitFor(t, "the install of v2 to start", 15*time.Second, func() bool { return f.installStarted(version("main", 2)) })
			// What the next start must deploy: v2 again, or the newer push.
			wantSHA, wantVersion, wantTrigger, wantWebhook := v2, version("main", 2), store.TriggerRequeue, a.WebhookEventID
			if tc.waiting {
				v3 := f.push("main", 1)[0]
				b := f.hook("main", v2, v3)
				wantSHA, wantVersion, wantTrigger, wantWebhook = v3, version("main", 3), store.TriggerWebhook, b.WebhookEventID
			}

			begin := time.Now()
			srv.Signal(t, syscall.SIGTERM)
			testenv.WaitFor(t, "fraisier to stop accepting connections", grace, func() bool {
				c, err := net.DialTimeout("tcp", f.base()[len("http://"):], time.Second)
				if err == nil {
					c.Close()
					return false
				}
				// A connection caught in the backlog as the listener closed
				// is reset; only a refusal says the socket is gone.
				return errors.Is(err, syscall.ECONNREFUSED)
			})
			if srv.Exited() {
				t.Fatalf("fraisier exited %s after SIGTERM, before the grace period of %s ran out", time.Since(begin), grace)
			}
			if code := srv.Wait(t, grace+15*time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0", code)
			}
			took := time.Since(begin)
			t.Logf("exited %s after SIGTERM (grace %s)", took.Round(time.Millisecond), grace)
			if took < grace {
				t.Errorf("exited %s after SIGTERM, before the grace period of %s ran out", took, grace)
			}

			if d := f.deployment(id); d.Status != store.StatusFailed {
				t.Errorf("deployment cancelled at shutdown: %s (%q), want failed: it had not switched", d.Status, d.Error)
			}
			if got := f.serving("production"); got != version("main", 1) {
				t.Errorf("service answers %q after the cancelled deployment, want %s", got, version("main", 1))
			}
			if st := f.state("production"); st.CurrentSHA != v1 {
				t.Errorf("current commit %s after the cancelled deployment, want %s", st.CurrentSHA, v1)
			}
			queued, err := f.store().QueuedDeployments(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(queued) != 1 || queued[0].NewSHA != wantSHA || queued[0].Trigger != wantTrigger ||
				queued[0].WebhookID == nil || *queued[0].WebhookID != wantWebhook {
				t.Fatalf("queue after shutdown: %s; want %s waiting (%s), linked to webhook event %d",
					describe(queued), wantSHA, wantTrigger, wantWebhook)
			}

			f.release()
			f.serve()
			f.waitDeployed("production", wantSHA, wantVersion, 30*time.Second)
			if d := f.deployment(queued[0].ID); d.Status != store.StatusSucceeded {
				t.Errorf("deployment %d that waited through the restart: %s, want succeeded", d.ID, d.Status)
			}
			ds := f.deployments("production")
			if len(ds) != 3 {
				t.Errorf("history: %s; want v1, the cancelled v2, and %s", describe(ds), wantVersion)
			}
		})
	}
}

// TestE2EOneDeployerPerTarget: the CLI and the server never deploy one
// target at once. While `fraisier lock` holds the target, a push waits
// (and a newer push still replaces it, in place); after `fraisier unlock`
// the newest runs. While the server deploys, `fraisier deploy` from the command line
// is refused, naming the holder.
func TestE2EOneDeployerPerTarget(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	srv := f.serve()
	if _, code := f.cli("lock", "hello", "production", "--reason", "e2e maintenance"); code != 0 {
		t.Fatalf("lock: exit %d", code)
	}
	shas := f.push("main", 2)
	first := f.hook("main", "", shas[0])
	firstID := first.Deployments[0].DeploymentID
	testenv.WaitFor(t, "the server to find the target locked", 15*time.Second, func() bool {
		return logHas(srv, "target locked by another deployment; the request waits", "deployment", itoa(firstID))
	})
	if d := f.deployment(firstID); d.Status != store.StatusQueued {
		t.Fatalf("push while the target is locked: deployment %s, want queued", d.Status)
	}
	second := f.hook("main", shas[0], shas[1])
	if q := second.Deployments[0]; q.DeploymentID != firstID || q.ReplacedEvent != first.WebhookEventID {
		t.Errorf("second push: %+v; want the waiting deployment %d, replacing webhook event %d's request", q, firstID, first.WebhookEventID)
	}
	if st := f.state("production"); st.CurrentSHA != "" {
		t.Fatalf("deployed %s while the target was locked", st.CurrentSHA)
	}

	f.hold()
	if _, code := f.cli("unlock", "hello", "production", "--reason", "e2e done"); code != 0 {
		t.Fatalf("unlock: exit %d", code)
	}
	testenv.WaitFor(t, "the server's deployment to start after unlock", 15*time.Second, func() bool { return f.installStarted(version("main", 2)) })
	out, code := f.cli("deploy", "hello", "production", "--json")
	if code != 13 {
		t.Errorf("fraisier deploy while the server deploys: exit %d, want 13 (locked)\n%s", code, out)
	}
	f.release()
	f.waitDeployed("production", shas[1], version("main", 2), 30*time.Second)

	ds := f.deployments("production")
	if len(ds) != 1 || ds[0].ID != firstID || ds[0].Status != store.StatusSucceeded || ds[0].NewSHA != shas[1] ||
		ds[0].WebhookID == nil || *ds[0].WebhookID != second.WebhookEventID {
		t.Errorf("history: %s; want %d succeeded at the second push's commit, and no CLI deployment", describe(ds), firstID)
	}
	if f.installStarted(version("main", 1)) {
		t.Error("the replaced push reached its install step")
	}
}

func describe(ds []store.Deployment) string {
	var b strings.Builder
	b.WriteString("[")
	for i, d := range ds {
		if i > 0 {
			b.WriteString(", ")
		}
		wh := "-"
		if d.WebhookID != nil {
			wh = itoa(*d.WebhookID)
		}
		sha := d.NewSHA
		if len(sha) > 8 {
			sha = sha[:8]
		}
		b.WriteString(itoa(d.ID) + " " + string(d.Status) + " " + string(d.Trigger) + " " + sha + " webhook " + wh)
		if d.Error != "" {
			b.WriteString(" (" + d.Error + ")")
		}
	}
	return b.String() + "]"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
