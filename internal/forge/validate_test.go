package forge

import (
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		body string
		ok   bool
	}{
		{`{}`, true},
		{deep(MaxJSONDepth), true},
		{deep(MaxJSONDepth + 1), false},
		{`{"a":"` + strings.Repeat("[", 1000) + `"}`, true},            // brackets inside a string do not count
		{`{"a":"\"` + strings.Repeat("[", 1000) + `"}`, true},          // nor after an escaped quote
		{`{"a":"\\"` + "," + `"b":` + deep(MaxJSONDepth) + `}`, false}, // an escaped backslash ends no string early
		{`{"a":"unterminated`, true},                                   // left to json.Unmarshal
		{"{\"a\":\"\xff\"}", false},
		{"{\"a\":\"\xed\xa0\x80\"}", false}, // a UTF-16 surrogate encoded in UTF-8
	}
	for _, tt := range tests {
		if _, ok := checkJSON([]byte(tt.body)); ok != tt.ok {
			t.Errorf("checkJSON(%.60q) = %v, want %v", tt.body, ok, tt.ok)
		}
	}
}

func TestValidators(t *testing.T) {
	for _, ref := range []string{"refs/heads/main", "refs/heads/feature/x-1", "refs/tags/v1.2.3", "refs/heads/ümlaut", "refs/heads/a.b", "refs/heads/a@b", "refs/heads/_x", "refs/heads/#7"} {
		if !validRefName(ref) {
			t.Errorf("validRefName(%q) = false", ref)
		}
	}
	for _, ref := range []string{"", "@", "refs/heads/.hidden", "refs/heads/a/.b", "refs/heads/x.", "refs//heads", "refs/heads/a b", "refs/heads/a\tb",
		"refs/heads/a\x7fb", "refs/heads/a*", "refs/heads/a?", "refs/heads/a[1]", "refs/heads/$HOME", "refs/heads/a&b", "refs/heads/a>b", "refs/heads/a'b", "refs/heads/a\"b", "refs/heads/(x)", "refs/heads/\xffx"} {
		if validRefName(ref) {
			t.Errorf("validRefName(%q) = true", ref)
		}
	}
	if s, ok := normSHA("ABCDEF0123456789abcdef0123456789ABCDEF01"); !ok || s != "abcdef0123456789abcdef0123456789abcdef01" {
		t.Errorf("normSHA = %q, %v", s, ok)
	}
	for _, u := range []string{"https://h/x.git", "http://h:3000/x.git", "ssh://git@h:7999/p/r.git", "git://h/x.git", "git@github.com:o/r.git"} {
		if !validURL(u) {
			t.Errorf("validURL(%q) = false", u)
		}
	}
	for _, u := range []string{"", "-u", "--upload-pack=x", "https://", "https://-x", "file:///etc", "ext::sh -c x", "h:x", "https://a b", "@h:x", "a@h:"} {
		if validURL(u) {
			t.Errorf("validURL(%q) = true", u)
		}
	}
	if validWebURL("git@github.com:o/r.git") {
		t.Error("an scp-like address is not a web URL")
	}
	if got := cleanTitle("ok"); got != "ok" {
		t.Errorf("cleanTitle(ok) = %q", got)
	}
	if got := cleanTitle("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("cleanTitle = %q", got)
	}
}
