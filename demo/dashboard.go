package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// dashboard makes a read-only token, signs in to the web dashboard of
// the running serve with it, as a browser would, and checks that the
// overview and the history show the demo's deployments. It prints the
// dashboard's address; on a terminal, serve keeps running until Enter.
func (d *demo) dashboard(base string, deployed string) error {
	d.say("the web dashboard, signed in with a read-only token")
	fmt.Printf("\n%s$ fraisier tokens create demo-viewer --scope read%s\n", d.bold, d.reset)
	cmd := exec.CommandContext(d.ctx, d.bin, "tokens", "create", "demo-viewer", "--scope", "read")
	cmd.Env, cmd.Dir = d.env, d.root
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("create a token: %v: %s", err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	fmt.Printf("  %s  %s\n", strings.TrimSpace(errOut.String()), token)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := c.PostForm(base+"/ui/login", url.Values{"token": {token}})
	if err != nil {
		return fmt.Errorf("sign in to the dashboard: %w", err)
	}
	resp.Body.Close()
	for _, page := range []struct{ path, want string }{{"/ui/", "production"}, {"/ui/history", deployed[:12]}} {
		body, err := get(c, base+page.path)
		if err != nil {
			return err
		}
		if !strings.Contains(body, "hello") || !strings.Contains(body, page.want) {
			return fmt.Errorf("the dashboard's %s does not show the demo's deployments", page.path)
		}
		fmt.Printf("  GET %s%s → shows hello/production and %s\n", base, page.path, page.want)
	}
	fmt.Printf("\n%sThe dashboard: %s/ui/ (sign in with the token above)%s\n", d.bold, base, d.reset)
	if _, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		fmt.Printf("fraisier serve keeps running so that you can look; press Enter to stop it and end the demo.\n")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	return nil
}

// get reads a page, which must answer 200.
func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || strings.HasSuffix(resp.Request.URL.Path, "/login") {
		return "", fmt.Errorf("GET %s: %d at %s", u, resp.StatusCode, resp.Request.URL)
	}
	return string(b), nil
}
