package forge

import (
	"bytes"
	"unicode/utf8"
)

// decodeGitHubPush decodes a GitHub or Gitea push or ping, the intake's
// hot path, into p in one pass over the body, which it also checks in full
// (grammar, UTF-8, nesting). encoding/json scans the body twice, validity
// then decode, byte by byte through the commits it skips; this scan finds
// the end of each string with IndexByte.
//
// It gives exactly what checkJSON plus json.Unmarshal would, or gives up:
// ok is false for anything it does not handle the way encoding/json does
// (a wanted field that is null, of another type, repeated, matched only
// case-insensitively, or holding an escape; invalid JSON; an object at the
// top level missing), and the caller then decodes with encoding/json,
// which also words the error. FuzzDecodeGitHubPush holds it to that.
func decodeGitHubPush(body []byte, p *ghPayload) (ok bool) {
	if !utf8.Valid(body) {
		return false
	}
	s := scanner{b: body}
	s.space()
	if !s.object(s.topField(p)) {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

// fieldFunc decodes the value of key, the scanner standing on its first
// byte. known reports whether the key is one the caller decodes.
type fieldFunc func(s *scanner, key []byte) (known, ok bool)

type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object scans an object, handing each key to field; keys field does not
// know are skipped. A key that is not one field knows but equals one
// ignoring case would be matched by encoding/json: give up.
func (s *scanner) object(field fieldFunc) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	if s.depth++; s.depth > MaxJSONDepth {
		return false
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		key, escaped, ok := s.str()
		if !ok || escaped {
			return false
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		known, ok := field(s, key)
		if !ok {
			return false
		}
		if !known && !s.skip() {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// unknown reports whether key is none of names even ignoring case: a key
// matching one only ignoring case is one encoding/json would decode.
func unknown(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return false
		}
	}
	return true
}

// str scans a string and returns its raw content; escaped reports a
// backslash in it, which the caller must not take as the value. Most of a
// payload is strings: the closing quote is found with IndexByte, and the
// bytes before it are checked in a plain loop, the escapes only where one
// is.
func (s *scanner) str() (raw []byte, escaped, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	for j := start; ; {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			return nil, false, false
		}
		end := j + k
		for ; j < end; j++ {
			c := s.b[j]
			if c < 0x20 {
				return nil, false, false
			}
			if c != '\\' {
				continue
			}
			escaped = true
			n, ok := escapeLen(s.b[j+1:])
			if !ok {
				return nil, false, false
			}
			j += n
		}
		if j == end {
			s.i = end + 1
			return s.b[start:end], escaped, true
		}
		// The quote was escaped (j went past it): look for the next one.
	}
}

// escapeLen is how many bytes after a backslash its escape takes.
func escapeLen(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	switch b[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1, true
	case 'u':
		if len(b) < 5 {
			return 0, false
		}
		for _, h := range b[1:5] {
			if !isHexDigit(h) {
				return 0, false
			}
		}
		return 5, true
	}
	return 0, false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skip scans any value.
func (s *scanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(func(*scanner, []byte) (bool, bool) { return false, true })
	case c == '[':
		return s.array()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

func (s *scanner) array() bool {
	if s.depth++; s.depth > MaxJSONDepth {
		return false
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.skip() {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// text scans a string value that is a wanted field: one without escapes,
// set at most once.
func (s *scanner) text(dst *string, seen *bool) bool {
	if *seen {
		return false
	}
	*seen = true
	raw, escaped, ok := s.str()
	if !ok || escaped {
		return false
	}
	*dst = string(raw)
	return true
}

// The fields of ghPayload, as encoding/json names them.
var (
	pushFields = []string{"ref", "before", "after", "deleted", "repository", "sender", "pusher",
		"action", "number", "pull_request"}
	repoFields = []string{"full_name", "clone_url", "ssh_url", "html_url"}
	userFields = []string{"login", "username", "name"}
)

func (s *scanner) topField(p *ghPayload) fieldFunc {
	var seen [7]bool
	return func(s *scanner, key []byte) (bool, bool) {
		switch string(key) {
		case "ref":
			return true, s.text(&p.Ref, &seen[0])
		case "before":
			return true, s.text(&p.Before, &seen[1])
		case "after":
			return true, s.text(&p.After, &seen[2])
		case "deleted":
			if seen[3] {
				return true, false
			}
			seen[3] = true
			switch {
			case s.literal("true"):
				p.Deleted = true
			case s.literal("false"):
				p.Deleted = false
			default:
				return true, false
			}
			return true, true
		case "repository":
			if seen[4] {
				return true, false
			}
			seen[4] = true
			p.Repository = new(ghRepo)
			return true, s.object(s.repoField(p.Repository))
		case "sender":
			if seen[5] {
				return true, false
			}
			seen[5] = true
			p.Sender = new(ghUser)
			return true, s.object(s.userField(p.Sender))
		case "pusher":
			if seen[6] {
				return true, false
			}
			seen[6] = true
			p.Pusher = new(ghUser)
			return true, s.object(s.userField(p.Pusher))
		}
		// action, number and pull_request belong to pull requests: a push
		// carrying one is left to encoding/json.
		return false, unknown(key, pushFields...)
	}
}

func (s *scanner) repoField(r *ghRepo) fieldFunc {
	var seen [4]bool
	return func(s *scanner, key []byte) (bool, bool) {
		switch string(key) {
		case "full_name":
			return true, s.text(&r.FullName, &seen[0])
		case "clone_url":
			return true, s.text(&r.CloneURL, &seen[1])
		case "ssh_url":
			return true, s.text(&r.SSHURL, &seen[2])
		case "html_url":
			return true, s.text(&r.HTMLURL, &seen[3])
		}
		return false, unknown(key, repoFields...)
	}
}

func (s *scanner) userField(u *ghUser) fieldFunc {
	var seen [3]bool
	return func(s *scanner, key []byte) (bool, bool) {
		switch string(key) {
		case "login":
			return true, s.text(&u.Login, &seen[0])
		case "username":
			return true, s.text(&u.Username, &seen[1])
		case "name":
			return true, s.text(&u.Name, &seen[2])
		}
		return false, unknown(key, userFields...)
	}
}
