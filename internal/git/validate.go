package git

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// maxRefLen is not a git rule: it only keeps absurd input out of argv and
// out of error messages.
const maxRefLen = 1024

// ValidateRef checks a branch or tag name (short, like "main", or full,
// like "refs/heads/main") against git's check-ref-format rules, so that
// nothing from a webhook or a configuration file reaches git's argv
// unexamined. Abbreviated and full SHAs pass too: they are valid names.
func ValidateRef(ref string) error {
	if reason := refProblem(ref); reason != "" {
		return fmt.Errorf("ref %q: %s: %w", clip(ref), reason, ErrInvalid)
	}
	return nil
}

func refProblem(ref string) string {
	switch {
	case ref == "":
		return "empty"
	case len(ref) > maxRefLen:
		return fmt.Sprintf("longer than %d bytes", maxRefLen)
	case ref == "@":
		return `is "@"`
	case strings.HasPrefix(ref, "-"):
		// Would be read as an option.
		return `starts with "-"`
	case strings.HasPrefix(ref, "/"), strings.HasSuffix(ref, "/"):
		return `starts or ends with "/"`
	case strings.HasSuffix(ref, "."):
		return `ends with "."`
	case strings.Contains(ref, "//"):
		return `contains "//"`
	case strings.Contains(ref, ".."):
		// Would be read as a range.
		return `contains ".."`
	case strings.Contains(ref, "@{"):
		// Would be read as a reflog selector.
		return `contains "@{"`
	case hasControl(ref):
		return "contains a control character"
	}
	if i := strings.IndexAny(ref, " ~^:?*[\\"); i >= 0 {
		return fmt.Sprintf("contains %q", ref[i])
	}
	for _, comp := range strings.Split(ref, "/") {
		if strings.HasPrefix(comp, ".") {
			return `has a component starting with "."`
		}
		if strings.HasSuffix(comp, ".lock") {
			return `has a component ending with ".lock"`
		}
	}
	return ""
}

// IsSHA reports whether s is a full object name: 40 lowercase hex digits
// (SHA-1) or 64 (SHA-256).
func IsSHA(s string) bool {
	return (len(s) == 40 || len(s) == 64) && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validateSHA(sha string) error {
	if !IsSHA(sha) {
		return fmt.Errorf("commit %q: not a full lowercase hex SHA: %w", clip(sha), ErrInvalid)
	}
	return nil
}

// scpLike is git's short ssh form, user@host:path. The user is required:
// without it "ext::cmd" and "c:path" would look alike.
var scpLike = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._-]*)@([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):([^:].*)$`)

// transportHelper matches git's "<helper>::<address>" syntax (ext::, fd::
// and friends), which runs a program named by the URL.
var transportHelper = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+.-]*::`)

// ValidateRemote accepts the remote forms fraisier supports and refuses the
// rest before git sees them: https://host/path, ssh://[user@]host[:port]/path,
// user@host:path, file:///abs/path and /abs/path. Transport helpers (ext::,
// fd::), plain http and git://, relative paths, anything that starts with
// "-" and anything carrying control characters are refused.
func ValidateRemote(remote string) error {
	if reason := remoteProblem(remote); reason != "" {
		return fmt.Errorf("remote %q: %s: %w", clip(redact(remote)), reason, ErrInvalid)
	}
	return nil
}

func remoteProblem(remote string) string {
	switch {
	case remote == "":
		return "empty"
	case len(remote) > 4096:
		return "longer than 4096 bytes"
	case strings.HasPrefix(remote, "-"):
		return `starts with "-"`
	case hasControl(remote):
		return "contains a control character"
	case transportHelper.MatchString(remote):
		return "transport helpers (<helper>::) are not allowed"
	}
	if strings.HasPrefix(remote, "/") {
		return ""
	}
	if m := scpLike.FindStringSubmatch(remote); m != nil {
		if strings.HasPrefix(m[3], "-") {
			return `path starts with "-"`
		}
		return ""
	}
	i := strings.Index(remote, "://")
	if i < 0 {
		return "not a URL, user@host:path or absolute path"
	}
	scheme := strings.ToLower(remote[:i])
	u, err := url.Parse(remote)
	if err != nil {
		return "unparsable URL"
	}
	// Percent-decoded parts must be as clean as the raw string.
	if hasControl(u.Path) || hasControl(u.Host) || (u.User != nil && hasControl(u.User.String())) {
		return "contains an encoded control character"
	}
	switch scheme {
	case "https", "ssh":
		host := u.Hostname()
		if host == "" {
			return "no host"
		}
		// ssh would read "-oProxyCommand=..." as an option (CVE-2017-1000117).
		if strings.HasPrefix(host, "-") || (u.User != nil && strings.HasPrefix(u.User.Username(), "-")) {
			return `host or user starts with "-"`
		}
		if u.Path == "" || u.Path == "/" {
			return "no repository path"
		}
		return ""
	case "file":
		if u.Host != "" {
			return "file URL with a host"
		}
		if !strings.HasPrefix(u.Path, "/") {
			return "file URL without an absolute path"
		}
		return ""
	default:
		return fmt.Sprintf("scheme %q is not allowed (https, ssh, file)", scheme)
	}
}

func hasControl(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// redact hides a password in a URL so that it does not end up in errors
// and logs.
func redact(remote string) string {
	if !strings.Contains(remote, "://") {
		return remote
	}
	u, err := url.Parse(remote)
	if err != nil || u.User == nil {
		return remote
	}
	if _, ok := u.User.Password(); !ok {
		return remote
	}
	return u.Redacted()
}

// clip keeps hostile input from flooding an error message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
