package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The example's shape (examples/fraises.yaml): hello/production is the
// api of the e2e fixture, and hello-etl/production an etl that runs its
// code (shares_code_with). The etl's run_after_deploy appends the VERSION
// of the release it ran in to etl-runs in the control directory.

// withETL adds hello-etl to the fixture's configuration.
func withETL(f *e2e) {
	f.t.Helper()
	etl := fmt.Sprintf(`  hello-etl:
    type: etl
    repository: acme/hello
    environments:
      production:
        branch: main
        shares_code_with: hello/production
        scripts: [etl/load.sh]
        run_after_deploy:
          command: [sh, etl/load.sh, %s]
`, filepath.Join(f.ctl, "etl-runs"))
	cfg, err := os.OpenFile(f.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer cfg.Close()
	if _, err := cfg.WriteString(etl); err != nil {
		f.t.Fatal(err)
	}
}

// etlRuns lists the versions of the releases the etl ran in, in order.
func (f *e2e) etlRuns() []string {
	b, _ := os.ReadFile(filepath.Join(f.ctl, "etl-runs"))
	return strings.Fields(string(b))
}

// pushBehaving makes one commit on branch per behaviour ("healthy",
// "unhealthy": what the service's health check answers), the first commit
// of the branch with the etl's script, pushes them in one push and
// returns their SHAs, oldest first.
func (f *e2e) pushBehaving(branch string, behaviours ...string) []string {
	f.t.Helper()
	have := len(f.heads[branch])
	commits := make([]testenv.ImportCommit, len(behaviours))
	for i, behaviour := range behaviours {
		k := have + i + 1
		v := version(branch, k)
		commits[i] = testenv.ImportCommit{Message: v, Files: map[string]string{"VERSION": v + "\n", "behaviour": behaviour + "\n"}}
		if k == 1 {
			commits[i].Exec = map[string]string{"etl/load.sh": "cat VERSION >> \"$1\"\n"}
		}
	}
	shas := f.repo.Import(branch, commits)
	f.heads[branch] = append(f.heads[branch], shas...)
	return shas
}

// hookBoth pushes the delivery for after and insists on 202 naming the
// api's and the etl's deployments, which it returns.
func (f *e2e) hookBoth(before, after string) (api, etl int64) {
	f.t.Helper()
	d := f.delivery("main", before, after)
	status, a, err := f.send(&httpClient, f.base(), d)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, q := range a.Deployments {
		switch q.Fraise + "/" + q.Environment {
		case "hello/production":
			api = q.DeploymentID
		case "hello-etl/production":
			etl = q.DeploymentID
		}
	}
	if status != 202 || a.Outcome != store.OutcomeAccepted || api == 0 || etl == 0 {
		f.t.Fatalf("push of %s: %d %+v; want 202 accepted, naming both deployments", after, status, a)
	}
	return api, etl
}

// etlDeployments lists hello-etl/production's deployments, oldest first.
func (f *e2e) etlDeployments() []store.Deployment {
	f.t.Helper()
	var out []store.Deployment
	for _, d := range f.allDeployments() {
		if d.Fraise == "hello-etl" {
			out = append(out, d)
		}
	}
	return out
}

func (f *e2e) allDeployments() []store.Deployment {
	f.t.Helper()
	ds, err := f.store().Deployments(context.Background(), store.DeploymentFilter{Limit: 10000})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

// TestE2EExampleOrder: fraisier serve with the example's shape. One signed
// push queues the api and the etl that runs its code; the etl waits for
// the api's deployment and runs on the release it made current. A push
// whose api deployment rolls back leaves the etl skipped, saying why, in
// fraisier history and fraisier webhooks. A newer push that takes the
// waiting etl over makes it wait for the newer api deployment: it runs
// once, on the newest release.
func TestE2EExampleOrder(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	withETL(f)
	f.serve()

	// The first push: while the api installs (held), the etl waits; it
	// would fail now, with no release of the api to run in.
	v1 := f.pushBehaving("main", "healthy")[0]
	f.hold()
	api1, etl1 := f.hookBoth("", v1)
	testenv.WaitFor(t, "the api's install to begin", 30*time.Second, func() bool { return f.installStarted(version("main", 1)) })
	if d := f.deployment(etl1); d.Status != store.StatusQueued {
		t.Fatalf("the etl while the api installs: %s %q; want queued", d.Status, d.Error)
	}
	f.release()
	f.waitDeployed("production", v1, version("main", 1), 60*time.Second)
	a, e := f.deployment(api1), f.deployment(etl1)
	if a.Status != store.StatusSucceeded || e.Status != store.StatusSucceeded || e.StartedAt.Before(*a.FinishedAt) {
		t.Fatalf("api %s (finished %s), etl %s %q (started %s); want both succeeded, the etl started after the api finished",
			a.Status, a.FinishedAt, e.Status, e.Error, e.StartedAt)
	}
	if got := f.etlRuns(); !slices.Equal(got, []string{version("main", 1)}) {
		t.Fatalf("the etl ran in %v; want main-1's release", got)
	}

	// A push whose release fails its health check: the api rolls back,
	// and the etl does not run.
	v2 := f.pushBehaving("main", "unhealthy")[0]
	api2, etl2 := f.hookBoth(v1, v2)
	testenv.WaitFor(t, "both to finish", 90*time.Second, f.idle)
	if a := f.deployment(api2); a.Status != store.StatusRolledBack {
		t.Fatalf("api deployment of an unhealthy release: %s %q; want rolled_back", a.Status, a.Error)
	}
	var h struct {
		Deployments []struct {
			ID     int64        `json:"id"`
			Status store.Status `json:"status"`
			Error  string       `json:"error"`
		} `json:"deployments"`
	}
	out, code := f.cli("history", "hello-etl", "production", "--json")
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || len(h.Deployments) == 0 {
		t.Fatalf("history: exit %d, %v", code, err)
	}
	if d := h.Deployments[0]; d.ID != etl2 || d.Status != store.StatusSkipped || !strings.Contains(d.Error, fmt.Sprintf("deployment %d of hello/production", api2)) ||
		!strings.Contains(d.Error, string(store.StatusRolledBack)) {
		t.Errorf("history's newest etl deployment: %+v; want %d skipped, naming rolled back deployment %d", d, etl2, api2)
	}
	var w struct {
		Webhooks []struct {
			SHA     string        `json:"sha"`
			Outcome store.Outcome `json:"outcome"`
			Reason  string        `json:"reason"`
		} `json:"webhooks"`
	}
	out, code = f.cli("webhooks", "--json")
	if err := json.Unmarshal([]byte(out), &w); code != 0 || err != nil || len(w.Webhooks) == 0 {
		t.Fatalf("webhooks: exit %d, %v", code, err)
	}
	if e := w.Webhooks[0]; e.SHA != v2 || e.Outcome != store.OutcomeAccepted || !strings.Contains(e.Reason, "for hello-etl/production: not run") {
		t.Errorf("webhooks' newest event: %+v; want the push of %s accepted, saying the etl did not run", e, v2)
	}
	if got := f.etlRuns(); !slices.Equal(got, []string{version("main", 1)}) {
		t.Errorf("the etl ran in %v; want main-1's release only", got)
	}

	// Two pushes while the api deploys the first: the second takes the
	// etl's waiting request over, which then waits for the second's api
	// deployment, and runs once, on main-4's release.
	v3 := f.pushBehaving("main", "healthy")[0]
	f.hold()
	api3, etl3 := f.hookBoth(v2, v3)
	testenv.WaitFor(t, "the api's install of main-3 to begin", 30*time.Second, func() bool { return f.installStarted(version("main", 3)) })
	v4 := f.pushBehaving("main", "healthy")[0]
	api4, etl4 := f.hookBoth(v3, v4)
	if etl4 != etl3 || api4 == api3 {
		t.Fatalf("second push queued api %d, etl %d; want a new api request, and the etl's (%d) taken over", api4, etl4, etl3)
	}
	f.release()
	f.waitDeployed("production", v4, version("main", 4), 90*time.Second)
	if got := f.etlRuns(); !slices.Equal(got, []string{version("main", 1), version("main", 4)}) {
		t.Errorf("the etl ran in %v; want main-1's release, then main-4's only", got)
	}
	if e, a := f.deployment(etl3), f.deployment(api4); e.Status != store.StatusSucceeded || e.StartedAt.Before(*a.FinishedAt) {
		t.Errorf("etl %s (started %s); want succeeded, after the api's deployment of main-4 (finished %s)", e.Status, e.StartedAt, a.FinishedAt)
	}
	if n := len(f.etlDeployments()); n != 3 {
		t.Errorf("%d deployments of the etl, want 3 (one per push that reached it)", n)
	}
}
