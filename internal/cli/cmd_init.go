package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/git"
)

// initOptions are fraisier init's flags.
type initOptions struct {
	output, name, forge, appPath, scope, credentialsDir, publicURL string
	force, showSecret, writeUnit                                   bool
}

// packagedCredentials is the directory the packaged fraisier.service
// loads with LoadCredential=fraisier:/etc/fraisier/credentials.
const packagedCredentials = "/etc/fraisier/credentials"

// packagedState is the state database of the packaged fraisier.service.
const packagedState = "/var/lib/fraisier/fraisier.db"

// secretBytes is the webhook secret's entropy; it is written hex-encoded.
const secretBytes = 32

func (a *app) initCommand() *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init [path-or-clone-url]",
		Short: "Write a first fraises.yaml for a repository, its webhook secret and the forge's webhook settings",
		Long: `Init reads a local checkout (a path, default .) or a shallow clone of a clone
URL (https://, ssh://, user@host:path or file://) and writes a first
fraises.yaml: one api fraise with a production environment, its install
command and migration tool as the repository's files tell, and the forge's
webhook secret, generated (32 random bytes, hex) and written to a file of
mode 0600 (0640 in its directory's group when that group reads the
directory) that fraises.yaml names by secret_file. It never prints the
secret unless --show-secret, proposes the app's systemd unit (--write-unit
writes it beside fraises.yaml) and prints what to enter in the forge's
webhook form. It overwrites no file without --force.

The secret goes to /etc/fraisier/credentials/<name> when run as root
(the packaged fraisier.service hands that directory's files to serve as
the credentials fraisier_<file>, which is what fraises.yaml then names),
else to the user's configuration directory, named by its absolute path.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			source := "."
			if len(args) == 1 {
				source = args[0]
			}
			return a.runInit(cmd.Context(), o, source)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "fraises.yaml", "the configuration file to write")
	f.StringVar(&o.name, "name", "", "the fraise's name (default: the repository's)")
	f.StringVar(&o.forge, "forge", "", "github, gitlab, gitea, bitbucket or bitbucket_server (default: told by the clone URL's host)")
	f.StringVar(&o.appPath, "app-path", "", "where the app lives on this host (default /srv/<name>)")
	f.StringVar(&o.scope, "scope", "system", "systemd manager of the app's unit: system or user")
	f.StringVar(&o.credentialsDir, "credentials-dir", "", "where the secret file goes (default "+packagedCredentials+" as root, else $XDG_CONFIG_HOME/fraisier/credentials)")
	f.StringVar(&o.publicURL, "public-url", "", "the address the forge reaches serve at (default https://<this host's name>)")
	f.BoolVar(&o.force, "force", false, "overwrite files that exist")
	f.BoolVar(&o.showSecret, "show-secret", false, "print the webhook secret")
	f.BoolVar(&o.writeUnit, "write-unit", false, "write the proposed <name>.service beside the configuration")
	return cmd
}

// initSource is the tree init reads and what it came from.
type initSource struct {
	dir, remote, branch, sha string
	cleanup                  func()
}

// openInitSource is a local checkout, read where it is, or a clone URL,
// fetched one commit deep into a temporary directory.
func openInitSource(ctx context.Context, source string) (initSource, error) {
	remote := source
	if fi, err := os.Stat(source); err == nil && fi.IsDir() {
		abs, err := filepath.Abs(source)
		if err != nil {
			return initSource{}, err
		}
		if !isPlainDir(filepath.Join(abs, ".git")) {
			return snapshotSource(ctx, abs) // a bare repository, say
		}
		info, err := git.ReadCheckout(ctx, abs)
		if err != nil {
			return initSource{}, err
		}
		s := initSource{dir: abs, remote: info.Remote, branch: info.Branch, cleanup: func() {}}
		if s.remote == "" {
			s.remote = abs
		} else if err := git.ValidateRemote(s.remote); err != nil {
			return initSource{}, fmt.Errorf("origin of %s: %w: fraisier could not fetch it", abs, err)
		}
		if s.branch == "" {
			return initSource{}, fmt.Errorf("%s: HEAD is on no branch: check out the branch to deploy", abs)
		}
		return s, nil
	}
	if err := git.ValidateRemote(remote); err != nil {
		return initSource{}, &usageError{fmt.Errorf("%w (neither a directory nor a clone URL fraisier accepts)", err)}
	}
	return snapshotSource(ctx, remote)
}

// snapshotSource fetches remote's default branch, one commit deep, into a
// temporary directory.
func snapshotSource(ctx context.Context, remote string) (initSource, error) {
	tmp, err := os.MkdirTemp("", "fraisier-init-")
	if err != nil {
		return initSource{}, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	branch, sha, err := git.Snapshot(ctx, remote, tmp, git.Options{Timeout: 2 * time.Minute})
	if err != nil {
		cleanup()
		return initSource{}, err
	}
	return initSource{dir: filepath.Join(tmp, "tree"), remote: remote, branch: branch, sha: sha, cleanup: cleanup}, nil
}

func (a *app) runInit(ctx context.Context, o initOptions, source string) error {
	src, err := openInitSource(ctx, source)
	if err != nil {
		return err
	}
	defer src.cleanup()
	p, err := a.planInit(o, source, src)
	if err != nil {
		return err
	}
	unitPath := filepath.Join(filepath.Dir(o.output), p.Name+".service")
	targets := []string{o.output, p.SecretPath}
	if o.writeUnit {
		targets = append(targets, unitPath)
	}
	if !o.force {
		for _, t := range targets {
			if _, err := os.Lstat(t); err == nil {
				return fmt.Errorf("%s exists: fraisier init overwrites nothing without --force", t)
			}
		}
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	conf := p.renderConfig()
	if err := checkInitConfig(o.output, conf, p, secret); err != nil {
		return fmt.Errorf("the configuration init made does not load (a bug): %w", err)
	}
	if p.SecretMode, err = writeSecretFile(p.SecretPath, secret); err != nil {
		return err
	}
	if err := os.WriteFile(o.output, conf, 0o644); err != nil {
		return err
	}
	if o.writeUnit {
		if err := os.WriteFile(unitPath, p.renderUnit(), 0o644); err != nil {
			return err
		}
	}
	a.printInit(o, p, unitPath, secret)
	return nil
}

// planInit decides names, paths and the forge from the flags and the tree.
func (a *app) planInit(o initOptions, source string, src initSource) (*initPlan, error) {
	name := o.name
	if name == "" {
		name = nameOf(src.remote)
	}
	if !initName.MatchString(name) || len(name) > 64 {
		return nil, &usageError{fmt.Errorf("fraise name %q: lower-case letters, digits, - and _ only (give --name)", name)}
	}
	kind := forgeOfRemote(src.remote)
	if o.forge != "" {
		k, err := forge.ParseKind(o.forge)
		if err != nil {
			return nil, &usageError{err}
		}
		kind = k
	}
	if kind == "" {
		return nil, &usageError{fmt.Errorf("cannot tell the forge from %q: give --forge (github, gitlab, gitea, bitbucket, bitbucket_server)", src.remote)}
	}
	if o.scope != "system" && o.scope != "user" {
		return nil, &usageError{fmt.Errorf("--scope %q: system or user", o.scope)}
	}
	p := &initPlan{Name: name, Source: source, Remote: src.remote, Repository: ownerName(src.remote),
		Branch: src.branch, SHA: src.sha, Forge: kind, AppPath: o.appPath, Scope: o.scope,
		Detected: detectRepository(src.dir), PublicURL: o.publicURL}
	if p.AppPath == "" {
		p.AppPath = "/srv/" + name
	}
	if !filepath.IsAbs(p.AppPath) {
		return nil, &usageError{fmt.Errorf("--app-path %q: an absolute path", p.AppPath)}
	}
	if p.PublicURL == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "HOST"
		}
		p.PublicURL = "https://" + host
	}
	dir, err := a.credentialsDir(o.credentialsDir)
	if err != nil {
		return nil, err
	}
	p.SecretPath = filepath.Join(dir, name)
	p.SecretRef = p.SecretPath
	if dir == packagedCredentials {
		p.SecretRef = "fraisier_" + name
	}
	return p, nil
}

var initName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// nameOf is a fraise name made of a remote's or path's last element.
func nameOf(remote string) string {
	base := strings.TrimSuffix(strings.TrimRight(remote, "/"), ".git")
	if i := strings.LastIndexAny(base, "/:"); i >= 0 {
		base = base[i+1:]
	}
	base = strings.ToLower(base)
	var b strings.Builder
	for _, r := range base {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.TrimLeft(b.String(), "-_")
}

// credentialsDir is --credentials-dir, made absolute, or the default:
// the packaged unit's as root, else the user's configuration directory.
func (a *app) credentialsDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if a.env.Euid == 0 {
		return packagedCredentials, nil
	}
	if x := a.env.get("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "fraisier", "credentials"), nil
	}
	home := a.env.get("HOME")
	if !filepath.IsAbs(home) {
		return "", &usageError{errors.New("neither $XDG_CONFIG_HOME nor $HOME is set: give --credentials-dir")}
	}
	return filepath.Join(home, ".config", "fraisier", "credentials"), nil
}

func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// writeSecretFile writes the secret in a directory it makes 0700 if
// missing (its parents 0755: /etc/fraisier also holds the configuration
// serve reads); a file there before is overwritten (--force checked that).
// The file is 0600, or 0640 in its directory's group when that group may
// read the directory: the packaged /etc/fraisier/credentials is
// root:fraisier 0750, so that the fraisier user's commands read it too.
// It returns the mode given.
func writeSecretFile(path, secret string) (fs.FileMode, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, fmt.Errorf("write the secret: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return 0, fmt.Errorf("write the secret: %w", err)
	}
	mode, gid := fs.FileMode(0o600), -1
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err == nil && st.Gid != 0 && st.Mode&0o050 == 0o050 {
		mode, gid = 0o640, int(st.Gid)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, fmt.Errorf("write the secret: %w", err)
	}
	err = f.Chmod(0o600) // a file there before is closed to others first
	if err == nil && gid >= 0 {
		if err = f.Chown(-1, gid); err == nil {
			err = f.Chmod(mode)
		}
	}
	if err == nil {
		_, err = f.WriteString(secret + "\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write the secret: %w", err)
	}
	return mode, nil
}

// credentialsView is where serve under the packaged unit finds its
// credentials; checkInitConfig loads the file as serve would see it there.
const credentialsView = "/run/credentials/fraisier.service"

// checkInitConfig loads the configuration about to be written, with its
// secret file read as serve will read it.
func checkInitConfig(path string, conf []byte, p *initPlan, secret string) error {
	want := p.SecretRef
	if !filepath.IsAbs(want) {
		want = filepath.Join(credentialsView, want)
	}
	_, err := config.Parse(path, conf, config.Options{
		LookupEnv: func(k string) (string, bool) {
			if k == "CREDENTIALS_DIRECTORY" {
				return credentialsView, true
			}
			return "", false
		},
		ReadFile: func(name string) ([]byte, error) {
			if name == want {
				return []byte(secret + "\n"), nil
			}
			return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
		},
	})
	return err
}
