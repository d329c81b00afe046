package migrate

import (
	"strings"
	"testing"
)

// TestSecretsEverySpelling: whatever spelling a database URL gives its
// password in, a tool that prints the URL, the password as written in it or
// the password decoded has all three scrubbed, and the redacted URL shown
// in their place holds none of them.
func TestSecretsEverySpelling(t *testing.T) {
	tests := []struct {
		name, url        string
		written, decoded string
	}{
		{"userinfo", "postgres://app:Pa55%21word-x@db/app", "Pa55%21word-x", "Pa55!word-x"},
		{"userinfo in lower-case hex", "postgres://app:Pa55%2fword-x@db/app", "Pa55%2fword-x", "Pa55/word-x"},
		{"query parameter", "postgres://app@db/app?password=Pa55-word-x", "Pa55-word-x", "Pa55-word-x"},
		{"query parameter escaped as Go would", "postgres://app@db/app?password=Pa55%26word-x", "Pa55%26word-x", "Pa55&word-x"},
		{"query parameter escaped where Go would not", "postgres://app@db/app?sslmode=disable&password=Pa55%41word-x", "Pa55%41word-x", "Pa55Aword-x"},
		{"query parameter with a plus", "postgres:///app?host=/run/pg&password=Pa55+word-x", "Pa55+word-x", "Pa55 word-x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSecrets(tt.url)
			for _, leak := range []string{tt.url, tt.written, tt.decoded} {
				if got := s.scrub("tool says: " + leak + " (end)"); strings.Contains(got, "Pa55") {
					t.Errorf("scrub(%q) = %q", leak, got)
				}
			}
			if r := redactURL(tt.url); strings.Contains(r, "Pa55") {
				t.Errorf("redactURL(%q) = %q", tt.url, r)
			}
		})
	}
}
