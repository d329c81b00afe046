package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// fakeGitHub answers the calls of GitHub's Deployments API that
// fraisier makes, as docs/forge-status.md documents them, on loopback,
// and keeps them in order: the forge is the one part no test can reach.
type fakeGitHub struct {
	srv   *httptest.Server
	token string

	mu          sync.Mutex
	calls       []string // "POST /repos/.../statuses in_progress"
	deployments []fakeDeployment
}

type fakeDeployment struct {
	ID          int64           `json:"id"`
	SHA         string          `json:"sha"`
	Environment string          `json:"environment"`
	Payload     json.RawMessage `json:"payload"`
}

func newFakeGitHub(t *testing.T, token string) *fakeGitHub {
	g := &fakeGitHub{token: token}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+g.token || r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var fields struct {
		State       string          `json:"state"`
		Ref         string          `json:"ref"`
		Environment string          `json:"environment"`
		Payload     json.RawMessage `json:"payload"`
	}
	json.Unmarshal(body, &fields)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+fields.State))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/deployments"):
		var out []fakeDeployment
		for _, d := range g.deployments {
			if d.SHA == r.URL.Query().Get("sha") && d.Environment == r.URL.Query().Get("environment") {
				out = append(out, d)
			}
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/deployments"):
		d := fakeDeployment{ID: int64(len(g.deployments) + 1), SHA: fields.Ref, Environment: fields.Environment, Payload: fields.Payload}
		g.deployments = append(g.deployments, d)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(d)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/statuses"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":1}`)
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

// statuses are the deployment statuses posted for GitHub deployment id.
func (g *fakeGitHub) statuses(id int64) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	prefix := fmt.Sprintf("POST /repos/acme/hello/deployments/%d/statuses ", id)
	for _, c := range g.calls {
		if s, ok := strings.CutPrefix(c, prefix); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestE2EForgeStatus: fraisier serve with git.github.status. A signed
// push that deploys creates a GitHub deployment of the pushed commit and
// reports it in progress, then success; an unhealthy commit's deployment
// reports in progress, then failure (it was rolled back). Each report is
// in the outbox, and the token is in none of serve's log and the database.
func TestE2EForgeStatus(t *testing.T) {
	const token = "ghp_e2eforgestatus0123456789abcdef"
	gh := newFakeGitHub(t, token)
	f := newE2E(t, e2eOptions{githubStatus: gh.srv.URL})
	f.env = append(f.env, "E2E_STATUS_TOKEN="+token)
	serve := f.serve()

	good := f.pushBehaving("main", "healthy")[0]
	f.hook("main", "", good)
	f.waitDeployed("production", good, version("main", 1), 30*time.Second)
	testenv.WaitFor(t, "in_progress then success for the first deployment", 30*time.Second, func() bool {
		return strings.Join(gh.statuses(1), ",") == "in_progress,success"
	})

	bad := f.pushBehaving("main", "unhealthy")[0]
	a := f.hook("main", good, bad)
	testenv.WaitFor(t, "in_progress then failure for the rolled-back deployment", 60*time.Second, func() bool {
		return strings.Join(gh.statuses(2), ",") == "in_progress,failure"
	})
	if d := f.deployment(a.Deployments[0].DeploymentID); d.Status != store.StatusRolledBack {
		t.Fatalf("the unhealthy release's deployment: %s %q, want rolled_back", d.Status, d.Error)
	}
	gh.mu.Lock()
	deps := append([]fakeDeployment(nil), gh.deployments...)
	calls := append([]string(nil), gh.calls...)
	gh.mu.Unlock()
	if len(deps) != 2 || deps[0].SHA != good || deps[1].SHA != bad || deps[0].Environment != "hello/production" {
		t.Errorf("GitHub deployments: %+v", deps)
	}
	t.Logf("the calls GitHub received, in order:\n%s", strings.Join(calls, "\n"))

	for what, text := range map[string]string{"serve's log": serve.Out.String()} {
		if strings.Contains(text, token) {
			t.Errorf("%s shows the status token", what)
		}
	}
	rows, err := f.store().SQL().Query(`SELECT target || event || payload || last_error FROM tb_outbox WHERE kind = 'forge_status'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(s, token) || strings.Contains(s, gh.srv.URL) {
			t.Errorf("the outbox holds the token or the API address: %s", s)
		}
	}
	if n != 4 {
		t.Errorf("%d forge status reports in the outbox, want 4", n)
	}
	out, code := f.cli("notifications", "--forge")
	if code != 0 || strings.Count(out, " sent ") != 4 || !strings.Contains(out, "github") || strings.Contains(out, token) {
		t.Errorf("notifications --forge: exit %d, want the 4 reports sent to github", code)
	}
}
