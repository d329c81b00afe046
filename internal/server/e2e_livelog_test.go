package server_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// slowInstallScript prints lines slowly, a progress line redrawn with
// carriage returns and text that looks like SSE fields among them, after
// waiting while the test holds the gate.
const slowInstallScript = `# e2e install step: $1 is the test's control directory.
v=$(cat VERSION)
touch "$1/started-$v"
while [ -e "$1/hold" ]; do sleep 0.02; done
i=0
while [ $i -lt 25 ]; do
  echo "installing $v: part $i at $(date +%s%N)"
  i=$((i+1))
  sleep 0.04
done
printf 'progress 10%%\rprogress 100%%\r\n'
echo 'data: x'
echo 'event: end'
`

// TestE2ELiveLog: fraisier logs -f --remote follows a real deployment
// whose install prints slowly, through a proxy that cuts the stream once,
// and prints exactly what fraisier logs prints on the host afterwards.
func TestE2ELiveLog(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	if err := os.WriteFile(filepath.Join(f.ctl, "install.sh"), []byte(slowInstallScript), 0o644); err != nil {
		t.Fatal(err)
	}
	f.serve()
	reader := f.token("watcher", "read")
	proxy := testenv.NewFaultCutOnce(t, f.base(), "/log", 1500)

	f.hold()
	sha := f.push("main", 1)[0]
	id := f.hook("main", "", sha).Deployments[0].DeploymentID
	testenv.WaitFor(t, "the install to start", 60*time.Second, func() bool { return f.installStarted(version("main", 1)) })
	logs := f.start("fraisier logs -f --remote", []string{"FRAISIER_TOKEN=" + reader},
		f.bin, "logs", strconv.FormatInt(id, 10), "-f", "--remote", proxy.URL)
	delays := make(chan []time.Duration, 1)
	go func() { delays <- lineDelays(t, f.base(), id, reader) }()
	time.Sleep(200 * time.Millisecond) // both readers past the steps so far
	f.release()
	if code := logs.Wait(t, 90*time.Second); code != 0 {
		t.Fatalf("logs -f --remote: exit %d\n%s", code, logs.Out.String())
	}
	f.waitDeployed("production", sha, version("main", 1), 30*time.Second)
	local, code := f.cli("logs", strconv.FormatInt(id, 10))
	if code != 0 {
		t.Fatalf("logs: exit %d", code)
	}
	if got := logs.Out.String(); got != local {
		t.Fatalf("logs -f --remote printed:\n%s\nlocal logs prints:\n%s", got, local)
	}
	cut, resumes := proxy.Cut()
	if !cut || len(resumes) < 2 || resumes[1] == "" {
		t.Fatalf("the stream was not cut and resumed: cut %v, Last-Event-IDs %q", cut, resumes)
	}
	t.Logf("resumed from %s", fmt.Sprint(resumes[1:]))
	d := <-delays
	slices.Sort(d)
	if len(d) == 0 {
		t.Fatal("no install line reached the direct reader")
	}
	t.Logf("from echo in the install to arrival, %d lines: median %v, max %v", len(d), d[len(d)/2], d[len(d)-1])
}

// lineDelays reads the live log of deployment id to its end and returns,
// for each install line stamped with the time it was printed, how long
// it took to arrive.
func lineDelays(t *testing.T, base string, id int64, token string) []time.Duration {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/deployments/%d/log", base, id), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	var out []time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		_, stamp, ok := strings.Cut(sc.Text(), ": part ")
		if _, ns, ok2 := strings.Cut(stamp, " at "); ok && ok2 && strings.HasPrefix(sc.Text(), "data: installing") {
			if n, err := strconv.ParseInt(ns, 10, 64); err == nil {
				out = append(out, time.Since(time.Unix(0, n)))
			}
		}
	}
	return out
}
