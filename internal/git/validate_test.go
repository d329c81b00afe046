package git

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateRef(t *testing.T) {
	tests := []struct {
		ref string
		ok  bool
	}{
		{"main", true},
		{"release/2024-06", true},
		{"v1.2.3", true},
		{"refs/heads/main", true},
		{"feature/été", true},
		{"deadbeef", true},
		{"a.b", true},
		{"x@y", true},
		{"", false},
		{"@", false},
		{"-main", false},
		{"--upload-pack=touch /tmp/x", false},
		{"main..dev", false},
		{"..", false},
		{"main@{1}", false},
		{"main~1", false},
		{"main^", false},
		{"a:b", false},
		{"a?b", false},
		{"a*b", false},
		{"a[b", false},
		{`a\b`, false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"/main", false},
		{"main/", false},
		{"a//b", false},
		{"main.", false},
		{".hidden", false},
		{"a/.hidden", false},
		{"main.lock", false},
		{"a.lock/b", false},
		{strings.Repeat("a", maxRefLen+1), false},
	}
	for _, tt := range tests {
		err := ValidateRef(tt.ref)
		if tt.ok && err != nil {
			t.Errorf("ValidateRef(%q) = %v, want nil", tt.ref, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateRef(%q) = %v, want ErrInvalid", tt.ref, err)
		}
	}
}

func TestIsSHA(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{strings.Repeat("a", 40), true},
		{"0123456789abcdef0123456789abcdef01234567", true},
		{strings.Repeat("f", 64), true},
		{strings.Repeat("A", 40), false},
		{strings.Repeat("a", 39), false},
		{strings.Repeat("a", 41), false},
		{strings.Repeat("a", 63), false},
		{strings.Repeat("g", 40), false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSHA(tt.s); got != tt.want {
			t.Errorf("IsSHA(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidateRemote(t *testing.T) {
	tests := []struct {
		remote string
		ok     bool
	}{
		{"https://github.com/fraiseql/fraisier.git", true},
		{"https://user:token@git.example.com/a/b.git", true},
		{"https://git.example.com:8443/a/b", true},
		{"ssh://git@github.com/fraiseql/fraisier.git", true},
		{"ssh://git@[::1]:2222/srv/repo.git", true},
		{"git@github.com:fraiseql/fraisier.git", true},
		{"deploy@github-app1:org/app.git", true},
		{"file:///srv/git/app.git", true},
		{"/srv/git/app.git", true},
		{"/srv/my repos/app.git", true},
		{"", false},
		{"ext::sh -c touch% /tmp/pwned", false},
		{"ext::ssh -o ProxyCommand=x host %S repo", false},
		{"fd::3", false},
		{"https::example.com/repo", false},
		{"-u/tmp/x", false},
		{"--upload-pack=touch /tmp/pwned", false},
		{"http://example.com/repo.git", false},
		{"git://example.com/repo.git", false},
		{"ftp://example.com/repo.git", false},
		{"relative/path", false},
		{"./repo", false},
		{"github.com:org/repo.git", false},
		{"git@-oProxyCommand=x:repo", false},
		{"git@host:-repo", false},
		{"ssh://-oProxyCommand=touch%20x/repo", false},
		{"ssh://-user@host/repo", false},
		{"ssh:///repo", false},
		{"https://github.com", false},
		{"https://github.com/a\nb", false},
		{"https://github.com/a%0ab", false},
		{"/srv/repo\x00.git", false},
		{"file://host/srv/repo", false},
		{"file://relative", false},
	}
	for _, tt := range tests {
		err := ValidateRemote(tt.remote)
		if tt.ok && err != nil {
			t.Errorf("ValidateRemote(%q) = %v, want nil", tt.remote, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateRemote(%q) = %v, want ErrInvalid", tt.remote, err)
		}
	}
}

func TestValidateRemoteRedactsPasswords(t *testing.T) {
	err := ValidateRemote("ftp://user:s3cret@example.com/repo")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v shows the password", err)
	}
}
