package execx

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestChildEnvironment runs a real child with fraisier's environment
// holding secrets the way a deployment host does (a webhook secret given
// as ${VAR}, a database URL, CREDENTIALS_DIRECTORY): the child sees the
// allowlist, the variables its caller passes by name, and the caller's
// own, and none of the rest.
func TestChildEnvironment(t *testing.T) {
	t.Setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
	t.Setenv("HOME", "/home/fraisier")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_TIME", "en_GB.UTF-8")
	t.Setenv("TZ", "Europe/Paris")
	t.Setenv("GITHUB_WEBHOOK_SECRET", "sec-webhook-0123456789")
	t.Setenv("DATABASE_URL", "postgres://app:sec-db-pass@db/app")
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/fraisier.service")
	t.Setenv("SSH_AUTH_SOCK", "/run/agent.sock")

	tests := []struct {
		name string
		pass []string
		env  []string
		want []string
	}{
		{name: "allowlist only",
			want: []string{"HOME=/home/fraisier", "LANG=C.UTF-8", "LC_TIME=en_GB.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin", "TZ=Europe/Paris"}},
		{name: "passed by name", pass: []string{"SSH_AUTH_SOCK", "UNSET_VARIABLE"},
			want: []string{"HOME=/home/fraisier", "LANG=C.UTF-8", "LC_TIME=en_GB.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin", "SSH_AUTH_SOCK=/run/agent.sock", "TZ=Europe/Paris"}},
		{name: "given explicitly, winning", env: []string{"APP_ENV=production", "HOME=/srv/app", "LC_TIME=C"},
			want: []string{"APP_ENV=production", "HOME=/srv/app", "LANG=C.UTF-8", "LC_TIME=C", "PATH=/usr/local/bin:/usr/bin:/bin", "TZ=Europe/Paris"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Output(context.Background(), Cmd{Argv: []string{"env"}, PassEnv: tt.pass, Env: tt.env})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(out, "\n")
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("child environment (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChildEnvironmentPWD: a child started in a directory has PWD naming
// it, as os/exec gives one that inherits everything.
func TestChildEnvironmentPWD(t *testing.T) {
	dir := t.TempDir()
	out, err := Output(context.Background(), Cmd{Argv: []string{"env"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(out, "\n"), "PWD="+dir) {
		t.Errorf("child environment %q has no PWD=%s", out, dir)
	}
}
