package server_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2EOverviewSubjectAndHealth: fraisier serve's dashboard shows, on
// the overview, the deployed commit's subject read from the git mirror
// and the health check's answer now with the unit active; once the unit
// is stopped, a later probe says unhealthy and not active.
func TestE2EOverviewSubjectAndHealth(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	f.serve()
	sha := f.push("main", 1)[0]
	f.hook("main", "", sha)
	f.waitDeployed("production", sha, version("main", 1), 30*time.Second)

	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(f.base()+"/ui/login", url.Values{"token": {f.token("viewer", "read")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "fraisier_session" {
			session = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	row := func() string {
		req, err := http.NewRequest("GET", f.base()+"/ui/fragment/overview", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(session)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("overview: %d %s", resp.StatusCode, b)
		}
		return regexp.MustCompile(`(?s)<tr id="target-hello-production".*?</tr>`).FindString(string(b))
	}
	until := func(d time.Duration, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			r := row()
			missing := false
			for _, w := range want {
				missing = missing || !strings.Contains(r, w)
			}
			if !missing {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("the production row never showed %q: %s", want, r)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	until(20*time.Second, `<span class="subject">`+version("main", 1)+`</span>`, "healthy</span>", "units active", "checked")

	f.mgr.MustSystemctl(t, "stop", f.envs["production"].unit)
	// The next probe comes at most 15 s after the last, at a view.
	until(40*time.Second, "unhealthy</span>: ", "not active: "+f.envs["production"].unit)
}
