package git

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readMirrorConfig reads, in one git process, whether the repository is
// bare (core.bare, as git rev-parse --is-bare-repository would answer for
// a repository named by GIT_DIR with no work tree) and origin's URL.
// --local makes git fail when the directory is not a repository at all.
func readMirrorConfig(ctx context.Context, g runner) (bare bool, url string, err error) {
	out, err := g.run(ctx, call{args: []string{"config", "--local", "--includes", "--null",
		"--get-regexp", `^(core\.bare|remote\.origin\.url)$`}})
	if err != nil {
		// Exit 1: neither key is set, so core.bare is not true.
		return false, "", err
	}
	bare, url = parseMirrorConfig(out)
	return bare, url, nil
}

// readPlainMirrorConfig answers what readMirrorConfig does, without a git
// process, when dir is laid out as a repository (objects and refs beside
// HEAD) and its config file is plain: see parsePlainConfig. plain is false
// whenever git must be asked instead.
func readPlainMirrorConfig(dir string) (bare bool, url string, plain bool) {
	for _, sub := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false, "", false
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil {
		return false, "", false
	}
	return parsePlainConfig(string(b))
}

// parsePlainConfig reads core.bare and remote.origin.url from a git config
// file written by git init and git config for plain values: section
// headers, "key = value" lines, blank lines and whole-line comments. Any
// other construct (quotes, escapes, continuations, inline comments, the
// old [section.sub] form, include and includeIf, extensions that change
// where config is read from) makes plain false, and the caller asks git.
func parsePlainConfig(text string) (bare bool, url string, plain bool) {
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			name, ok := strings.CutSuffix(line, "]")
			if !ok {
				return false, "", false
			}
			name = name[1:]
			main, sub, hasSub := strings.Cut(name, " ")
			if !isConfigName(main) || strings.Contains(main, ".") {
				return false, "", false
			}
			main = strings.ToLower(main)
			if main == "include" || main == "includeif" || main == "extensions" {
				return false, "", false
			}
			if hasSub {
				// Only a quoted subsection without escapes.
				inner, ok := strings.CutPrefix(sub, `"`)
				if inner, ok = strings.CutSuffix(inner, `"`); !ok || len(inner) == 0 || strings.ContainsAny(inner, `"\`) {
					return false, "", false
				}
				section = main + "." + inner
			} else {
				section = main
			}
			continue
		}
		if strings.ContainsAny(line, `"\#;`) || section == "" {
			return false, "", false
		}
		key, value, hasValue := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !isConfigName(key) {
			return false, "", false
		}
		switch section + "." + strings.ToLower(key) {
		case "core.bare":
			bare = true
			if hasValue {
				var ok bool
				if bare, ok = parseConfigBool(value); !ok {
					// git would reject the value; let it say so.
					return false, "", false
				}
			}
		case "remote.origin.url":
			if !hasValue {
				return false, "", false
			}
			url = value
		}
	}
	return bare, url, true
}

// isConfigName reports whether s is a plain git config section or key name.
func isConfigName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// parseMirrorConfig reads --null --get-regexp output: records "key\nvalue"
// (or "key" alone for a value-less boolean) ended by NUL. The last value
// of a key wins, as for git itself. stderr arrives mixed in, so lines
// before a key we asked for are skipped; what cannot be read leaves the
// repository not bare, or the URL to be rewritten.
func parseMirrorConfig(out string) (bare bool, url string) {
	for _, rec := range strings.Split(out, "\x00") {
		for {
			key, _, _ := strings.Cut(rec, "\n")
			if key == "core.bare" || key == "remote.origin.url" || !strings.Contains(rec, "\n") {
				break
			}
			_, rec, _ = strings.Cut(rec, "\n")
		}
		key, value, hasValue := strings.Cut(rec, "\n")
		switch key {
		case "core.bare":
			b, _ := parseConfigBool(value)
			bare = !hasValue || b
		case "remote.origin.url":
			url = value
		}
	}
	return bare, url
}

// parseConfigBool is git's reading of a boolean value; ok is false for a
// value git would reject.
func parseConfigBool(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on":
		return true, true
	case "", "false", "no", "off":
		return false, true
	}
	n, err := strconv.ParseInt(v, 0, 64)
	return err == nil && n != 0, err == nil
}
