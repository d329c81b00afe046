package forge

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Limits on what a payload may carry into an Event.
const (
	MaxRefLen    = 255  // bytes, as git's own limit on a ref file name
	MaxNameLen   = 256  // repository full names and senders
	MaxTitleLen  = 256  // pull request titles, cut on a rune boundary
	MaxURLLen    = 2048 // clone and web URLs
	MaxJSONDepth = 64   // real payloads nest about ten deep
)

// refForbidden lists the bytes git forbids in refs (besides control
// characters) followed by the shell metacharacters fraisier forbids too.
const refForbidden = " ~^:?*[\\" + "$`;|&<>'\"()"

const (
	headsPrefix = "refs/heads/"
	tagsPrefix  = "refs/tags/"
)

// normSHA validates a full object name and returns it in lower case. It
// accepts exactly 40 (SHA-1) or 64 (SHA-256) hex digits.
func normSHA(s string) (string, bool) {
	if len(s) != 40 && len(s) != 64 {
		return "", false
	}
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		return strings.ToLower(s), true
	}
	return s, true
}

// isZeroSHA reports whether s is the all-zero object name forges use for
// "no commit" (a created or deleted ref).
func isZeroSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// isHex reports whether s is non-empty and all hex digits.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validRefName applies git check-ref-format's rules to a full ref name, and
// two more. No component may start with "-", so that no part of a ref can
// be read as an option by a command it is passed to. And no shell
// metacharacter ($ ` ; | & < > ' " ( )) may appear: git allows them, but
// refs reach run_after_deploy hooks through the environment, where a
// careless script could interpolate them; no real branch needs them.
func validRefName(ref string) bool {
	if ref == "" || len(ref) > MaxRefLen || ref == "@" || !utf8.ValidString(ref) {
		return false
	}
	if strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.Contains(ref, "..") ||
		strings.Contains(ref, "@{") || strings.Contains(ref, "//") {
		return false
	}
	start := 0
	for i := 0; i <= len(ref); i++ {
		if i < len(ref) {
			c := ref[i]
			if c < 0x20 || c == 0x7f || strings.IndexByte(refForbidden, c) >= 0 {
				return false
			}
			if c != '/' {
				continue
			}
		}
		comp := ref[start:i]
		if comp == "" || comp[0] == '.' || comp[0] == '-' || strings.HasSuffix(comp, ".lock") {
			return false
		}
		start = i + 1
	}
	return !hasC1Control(ref)
}

// splitPushRef validates a pushed ref and splits it into its short name and
// whether it is a tag. Only branches and tags are deployable.
func splitPushRef(ref string) (name string, isTag bool, ok bool) {
	switch {
	case strings.HasPrefix(ref, headsPrefix):
		name = ref[len(headsPrefix):]
	case strings.HasPrefix(ref, tagsPrefix):
		name, isTag = ref[len(tagsPrefix):], true
	default:
		return "", false, false
	}
	if name == "" || !validRefName(ref) {
		return "", false, false
	}
	return name, isTag, true
}

// validBranch validates a short branch name (as pull requests carry them).
func validBranch(name string) bool {
	return name != "" && len(headsPrefix)+len(name) <= MaxRefLen && validRefName(headsPrefix+name)
}

// validText checks a name-like string: valid UTF-8, no control characters
// (C0, DEL or C1), at most max bytes. The empty string is valid: callers
// decide whether a field is required.
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return !hasC1Control(s)
}

// hasC1Control reports whether s holds U+0080..U+009F, which UTF-8 encodes
// as 0xC2 0x80..0x9F.
func hasC1Control(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == 0xC2 && s[i+1] >= 0x80 && s[i+1] <= 0x9F {
			return true
		}
	}
	return false
}

// validURL accepts the clone and web URLs forges send: http(s), ssh or git
// URLs, or scp-like user@host:path, in printable ASCII without spaces, not
// starting with "-". It does not try to be a URL parser; it makes sure that
// the string cannot be mistaken for an option or split into several
// arguments.
func validURL(s string) bool {
	if !printableASCII(s, MaxURLLen) || s[0] == '-' {
		return false
	}
	for _, scheme := range [...]string{"https://", "http://", "ssh://", "git://"} {
		if strings.HasPrefix(s, scheme) {
			return len(s) > len(scheme) && s[len(scheme)] != '-' && s[len(scheme)] != '/'
		}
	}
	// scp-like syntax: user@host:path, with no scheme.
	at := strings.IndexByte(s, '@')
	colon := strings.IndexByte(s, ':')
	return at > 0 && colon > at+1 && colon < len(s)-1 && !strings.Contains(s[:colon], "/")
}

// validWebURL accepts http(s) URLs only: a web URL is for people to open.
func validWebURL(s string) bool {
	return (strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) && validURL(s)
}

// cleanTitle makes free text safe to show: control characters become
// spaces, invalid UTF-8 becomes U+FFFD, and the result is cut to MaxTitleLen
// bytes on a rune boundary. It allocates only when it changes something.
func cleanTitle(s string) string {
	if validText(s, MaxTitleLen) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return ' '
		}
		return r
	}, s)
	if len(s) > MaxTitleLen {
		cut := MaxTitleLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// validEventHeader checks the raw event header: printable ASCII (spaces
// allowed inside, for GitLab's "Push Hook"), at most 128 bytes.
func validEventHeader(s string) bool {
	if s == "" || len(s) > 128 || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validAction checks a pull request action word (or Bitbucket's colon
// separated key suffix): printable ASCII without spaces, at most 64 bytes.
func validAction(s string) bool {
	return printableASCII(s, 64)
}

// checkJSON rejects bodies that JSON decoding would accept too leniently or
// too expensively: invalid UTF-8 (encoding/json would silently replace it)
// and nesting deeper than MaxJSONDepth. It does not check the grammar;
// json.Unmarshal does that. Strings, most of a payload, are skipped with
// IndexByte rather than byte by byte.
func checkJSON(body []byte) (string, bool) {
	if !utf8.Valid(body) {
		return "body is not valid UTF-8", false
	}
	depth := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			end, ok := stringEnd(body, i+1)
			if !ok {
				return "", true // unterminated: json.Unmarshal reports it
			}
			i = end
		case '{', '[':
			depth++
			if depth > MaxJSONDepth {
				return "JSON nested too deeply", false
			}
		case '}', ']':
			depth--
		}
	}
	return "", true
}

// stringEnd returns the index of the quote closing the JSON string whose
// content starts at from: the first quote not escaped by an odd number of
// backslashes.
func stringEnd(body []byte, from int) (int, bool) {
	for j := from; ; {
		k := bytes.IndexByte(body[j:], '"')
		if k < 0 {
			return 0, false
		}
		end := j + k
		n := 0
		for p := end - 1; p >= from && body[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return end, true
		}
		j = end + 1
	}
}
