package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// maxSecretFile bounds a *_file: a secret is short, and a large file is
// almost certainly the wrong one.
const maxSecretFile = 64 << 10

// readSecretFiles reads every *_file key into the secret it stands for.
// Problems name the file, never its content.
func (l *loader) readSecretFiles() {
	c := l.cfg
	forges := []struct {
		key string
		f   *Forge
	}{
		{"github", c.Git.GitHub}, {"gitlab", c.Git.GitLab}, {"gitea", c.Git.Gitea},
		{"bitbucket", c.Git.Bitbucket}, {"bitbucket_server", c.Git.BitbucketServer},
	}
	for _, fg := range forges {
		if fg.f != nil && fg.f.SecretFile != "" {
			path := "git." + fg.key + ".secret_file"
			fg.f.FileSecret, fg.f.SecretFile = l.readSecret(path, fg.f.SecretFile)
		}
	}
	for _, fname := range sortedKeys(c.Fraises) {
		f := c.Fraises[fname]
		if f == nil {
			continue
		}
		if w := f.Webhook; w != nil && w.SecretFile != "" {
			w.FileSecret, w.SecretFile = l.readSecret("fraises."+fname+".webhook.secret_file", w.SecretFile)
		}
		for _, ename := range sortedKeys(f.Environments) {
			e := f.Environments[ename]
			if e == nil || e.Database == nil || e.Database.URLFile == "" {
				continue
			}
			path := envPath(fname, ename) + ".database"
			if e.Database.URL != "" {
				l.report(path+".url_file", "url and url_file are both set", "keep one of them")
				continue
			}
			e.Database.URL, e.Database.URLFile = l.readSecret(path+".url_file", e.Database.URLFile)
		}
	}
	if s := &c.Server; s.APITokenFile != "" {
		if s.APIToken != "" {
			l.report("server.api_token_file", "api_token and api_token_file are both set", "keep one of them")
		} else {
			s.APIToken, s.APITokenFile = l.readSecret("server.api_token_file", s.APITokenFile)
		}
	}
	l.readStatusTokens()
	if s := &c.State; s.URLFile != "" && s.URL == "" && s.Path == "" {
		// Conflicts between path, url and url_file are the validator's.
		s.URL, s.URLFile = l.readSecret("state.url_file", s.URLFile)
	}
}

// credentialHint says how a relative *_file name can be found.
func (l *loader) credentialHint() string {
	h := "give an absolute path, or run under systemd with LoadCredential= so that $CREDENTIALS_DIRECTORY is set"
	if c := l.opts.Credentials; c.Dir != "" {
		h += fmt.Sprintf(", or name a file X of %s as %s_X", c.Dir, c.Prefix)
	}
	return h
}

// readSecret reads the file named at path (a *_file key) and returns its
// content without one trailing newline, and the name it was read from.
func (l *loader) readSecret(path, name string) (Secret, string) {
	s, full, ok := l.readSecretFile(path, name)
	if !ok {
		l.ps.markBad(path) // and so not "no secret" as well
	}
	return s, full
}

func (l *loader) readSecretFile(path, name string) (Secret, string, bool) {
	full, err := l.resolveCredential(name)
	if err != nil {
		l.report(path, err.Error(), l.credentialHint())
		return "", name, false
	}
	data, err := l.opts.ReadFile(full)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named below, once
		}
		l.report(path, fmt.Sprintf("read %s: %v", full, err), "")
		return "", full, false
	}
	if len(data) > maxSecretFile {
		l.report(path, fmt.Sprintf("%s is larger than %d KiB; is it the right file?", full, maxSecretFile>>10), "")
		return "", full, false
	}
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		l.report(path, fmt.Sprintf("%s is empty", full), "")
		return "", full, false
	}
	return Secret(s), full, true
}

// resolveCredential turns a *_file name into a path: absolute names are
// used as they are, relative ones are systemd credentials, read outside
// the unit from the directory it loads them from (Options.Credentials).
func (l *loader) resolveCredential(name string) (string, error) {
	if filepath.IsAbs(name) {
		return filepath.Clean(name), nil
	}
	dir, _ := l.opts.LookupEnv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		if p := l.opts.Credentials.path(name); p != "" {
			return p, nil
		}
		return "", fmt.Errorf("%s is a relative path and $CREDENTIALS_DIRECTORY is not set", name)
	}
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("%s leaves $CREDENTIALS_DIRECTORY", name)
	}
	return filepath.Join(dir, name), nil
}
