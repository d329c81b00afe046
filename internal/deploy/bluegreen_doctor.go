package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/execx"
)

// CheckProxy says whether a blue/green environment's proxy is there and
// usable, changing nothing: nginx's upstream file can be written, its
// master runs and can be reloaded, and its configuration passes the test;
// Caddy's admin API answers for the reverse_proxy named; a link's directory
// is fraisier's alone and the sockets are reachable (checkLinkSetup). It
// returns what it found: which colour the proxy sends traffic to.
func CheckProxy(ctx context.Context, c Collaborators, env *config.Environment) (string, error) {
	bg := env.BlueGreen
	if bg == nil {
		return "", errors.New("no blue_green block")
	}
	p, err := newProxy(bg, c.Units(env.Scope))
	if err != nil {
		return "", err
	}
	s, err := p.read(ctx)
	if err != nil {
		return "", err
	}
	if n := bg.Nginx; n != nil {
		if err := checkNginx(ctx, n); err != nil {
			return "", err
		}
	}
	prefix := ""
	if bg.Link != "" {
		said, err := checkLinkSetup(bg, s)
		if err != nil {
			return "", err
		}
		prefix = said + "; "
	}
	if s.colour == "" {
		return prefix + "no colour serves yet: the next deployment starts blue", nil
	}
	return prefix + s.colour + " serves", nil
}

func checkNginx(ctx context.Context, n *config.Nginx) error {
	dir := filepath.Dir(n.File)
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("nginx: cannot write the upstream file's directory %s: %w", dir, err)
	}
	pid, err := readPIDFile(n.PIDFile)
	if err != nil {
		return fmt.Errorf("nginx: %w (is nginx running? set blue_green.nginx.pid_file)", err)
	}
	if n.ReloadUnit == "" {
		// Signal 0 asks whether SIGHUP would be allowed, sending nothing.
		if err := syscall.Kill(pid, 0); err != nil {
			return fmt.Errorf("nginx: cannot signal its master (pid %d): %w (run fraisier as root or nginx's user, or set reload_unit)", pid, err)
		}
	}
	if _, err := os.Stat(n.File); errors.Is(err, os.ErrNotExist) {
		return nil // the first deployment writes it; testing now would test nginx without it
	}
	if len(n.Test) > 0 {
		res, err := execx.Run(ctx, execx.Cmd{Argv: n.Test, Timeout: proxyTimeout, MaxOutput: 8 << 10})
		if err != nil {
			return fmt.Errorf("nginx: %s: %v: %s", execx.QuoteArgv(n.Test), err, oneLine(string(res.Output)))
		}
	}
	return nil
}

// liveColour is the colour env's proxy sends traffic to now ("" for
// neither), or why it could not be read.
func liveColour(ctx context.Context, c Collaborators, env *config.Environment) (string, string) {
	p, err := newProxy(env.BlueGreen, c.Units(env.Scope))
	if err != nil {
		return "", err.Error()
	}
	s, err := p.read(ctx)
	if err != nil {
		return "", err.Error()
	}
	return s.colour, ""
}
