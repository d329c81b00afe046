package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// serveUnit is the packaged unit that runs fraisier serve.
const serveUnit = "fraisier.service"

// serveSandbox is what serve's unit lets it write when it makes the file
// system read-only (ProtectSystem=strict): its ReadWritePaths= and its
// state directories. Checked by hand, app_path may be writable while
// serve, inside the unit, gets EROFS at its first deployment.
type serveSandbox struct {
	writable []string
}

// loadServeSandbox asks the system manager about fraisier.service; nil
// when doctor runs inside it, or it is not installed, or it leaves the
// file system writable.
func loadServeSandbox(ctx context.Context) *serveSandbox {
	if os.Getenv("INVOCATION_ID") != "" {
		return nil // under a unit: the writability checks see its sandbox
	}
	m, err := systemd.New(systemd.Options{Scope: systemd.ScopeSystem})
	if err != nil {
		return nil
	}
	p, err := m.Show(ctx, serveUnit, "LoadState", "ProtectSystem", "ReadWritePaths", "StateDirectory")
	if err != nil || p["LoadState"] != "loaded" || p["ProtectSystem"] != "strict" {
		return nil
	}
	sb := &serveSandbox{}
	for _, path := range strings.Fields(p["ReadWritePaths"]) {
		// "-" (ignore if missing) and "+" (relative to the root directory)
		// prefix a path; neither changes where it is here.
		sb.writable = append(sb.writable, filepath.Clean(strings.TrimLeft(path, "-+")))
	}
	for _, dir := range strings.Fields(p["StateDirectory"]) {
		sb.writable = append(sb.writable, filepath.Join("/var/lib", dir))
	}
	return sb
}

// check is the line saying whether serve may write app_path.
func (sb *serveSandbox) check(env *config.Environment) doctorCheck {
	fraise, name := env.Target()
	c := doctorCheck{Check: "sandbox", Fraise: fraise, Environment: name, Subject: env.AppPath, Result: checkOK}
	for _, w := range sb.writable {
		if rel, err := filepath.Rel(w, env.AppPath); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			c.Detail = serveUnit + " may write it (ReadWritePaths=" + w + ")"
			return c
		}
	}
	c.Result = checkFail
	c.Detail = serveUnit + " keeps it read-only (ProtectSystem=strict): serve's first deployment would fail"
	c.Fix = "systemctl edit " + serveUnit + ": [Service] ReadWritePaths=" + env.AppPath + ", then systemctl restart " + serveUnit
	return c
}
