package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// systemDirs are directories the operating system owns: an app_path there
// (or inside one) would have fraisier create releases/ and a current link
// among the system's files, and prune what it takes for old releases.
// /usr/local is the administrator's, and allowed.
var systemDirs = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr"}

// systemDir returns the system directory p is or lies in, "/" for the
// root itself, or "".
func systemDir(p string) string {
	if p == "/" {
		return "/"
	}
	if p == "/usr/local" || strings.HasPrefix(p, "/usr/local/") {
		return ""
	}
	for _, d := range systemDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return ""
}

// resolvePath is p with the symlinks of its longest existing prefix
// resolved: where p really is on this host, as far as the directories
// exist now. It gives p itself when nothing on the way can be read.
func resolvePath(p string) string {
	rest := ""
	for dir := p; ; {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(real, rest)
		}
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) && !(errors.As(err, &pe) && errors.Is(pe.Err, os.ErrNotExist)) {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return p
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

// validateAppPaths refuses app_paths that are, or lead through symlinks
// to, the root or a system directory, and records where each really is,
// so that validateRouting also catches two environments whose app_paths
// are one directory under two names. Only what exists when the
// configuration is loaded can be resolved; the deploy engine creates and
// switches releases below the path as it then finds it.
func (l *loader) validateAppPaths() {
	l.realAppPath = map[*Environment]string{}
	for _, e := range l.cfg.Environments() {
		if e.SharesCodeWith != "" || e.AppPath == "" || !filepath.IsAbs(e.AppPath) || slices.Contains(strings.Split(e.AppPath, "/"), "..") {
			continue // refused already, as written
		}
		at := envPath(e.Fraise.Name, e.Name) + ".app_path"
		if d := systemDir(e.AppPath); d != "" {
			l.report(at, fmt.Sprintf("app_path %s is %s", e.AppPath, describeSystemDir(e.AppPath, d)), "use a directory of its own, e.g. /srv/"+e.Fraise.Name)
			continue
		}
		real := resolvePath(e.AppPath)
		if d := systemDir(real); d != "" {
			l.report(at, fmt.Sprintf("app_path %s leads through a symlink to %s, which is %s", e.AppPath, real, describeSystemDir(real, d)),
				"use a directory of its own, e.g. /srv/"+e.Fraise.Name)
			continue
		}
		l.realAppPath[e] = real
	}
}

func describeSystemDir(p, d string) string {
	switch {
	case d == "/":
		return "the root directory"
	case p == d:
		return "a system directory"
	}
	return "inside " + d + ", a system directory"
}
