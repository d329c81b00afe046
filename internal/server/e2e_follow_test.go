package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2EFollowUps: the example's shape. When the api's current release
// changes outside a push that reaches the etl too, the etl follows: a
// fraisier rollback while fraisier serve runs, and a fraisier deploy with
// no server running, each record a deployment of the etl (trigger follow)
// that verifies its scripts and runs run_after_deploy in the release now
// current; the command runs it itself when no server took it first.
func TestE2EFollowUps(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	withETL(f)
	serve := f.serve()

	v1 := f.pushBehaving("main", "healthy")[0]
	f.hookBoth("", v1)
	f.waitDeployed("production", v1, version("main", 1), 60*time.Second)
	v2 := f.pushBehaving("main", "healthy")[0]
	f.hookBoth(v1, v2)
	f.waitDeployed("production", v2, version("main", 2), 60*time.Second)
	testenv.WaitFor(t, "the etl to run twice", 30*time.Second, func() bool { return f.idle() && len(f.etlRuns()) == 2 })

	if _, code := f.cli("rollback", "hello", "production"); code != 0 {
		t.Fatalf("rollback: exit %d", code)
	}
	testenv.WaitFor(t, "the etl to follow the rollback", 30*time.Second, f.idle)
	if got := f.etlRuns(); !slices.Equal(got, []string{version("main", 1), version("main", 2), version("main", 1)}) {
		t.Fatalf("the etl ran in %v; want main-1's, main-2's, then main-1's release again", got)
	}

	serve.Signal(t, syscall.SIGTERM)
	if code := serve.Wait(t, 60*time.Second); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	out, code := f.cli("deploy", "hello", "production")
	if code != 0 {
		t.Fatalf("deploy: exit %d", code)
	}
	if !strings.Contains(out, "hello-etl/production runs this code") {
		t.Errorf("deploy's output says nothing of the etl following:\n%s", out)
	}
	if got := f.etlRuns(); !slices.Equal(got, []string{version("main", 1), version("main", 2), version("main", 1), version("main", 2)}) {
		t.Fatalf("the etl ran in %v; want main-2's release last", got)
	}

	out, code = f.cli("history", "hello-etl", "production", "--json")
	var h struct {
		Deployments []struct {
			Status  store.Status  `json:"status"`
			Trigger store.Trigger `json:"trigger"`
			Actor   string        `json:"actor"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || len(h.Deployments) != 4 {
		t.Fatalf("history: exit %d, %v, %d deployments; want 4", code, err, len(h.Deployments))
	}
	for i, d := range h.Deployments[:2] {
		if d.Status != store.StatusSucceeded || d.Trigger != store.TriggerFollow || !strings.HasPrefix(d.Actor, "hello/production deployment ") {
			t.Errorf("history's etl deployment %d: %+v; want a follow-up of hello's, succeeded", i, d)
		}
	}
	if n := len(f.etlDeployments()); n != 4 {
		t.Errorf("%d deployments of the etl, want 4: %s", n, fmt.Sprint(f.etlDeployments()))
	}
}
