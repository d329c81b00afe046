package systemd

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestQuoteExecArgs(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/true"}, "/bin/true"},
		{[]string{"/usr/bin/python3", "manage.py", "migrate"}, "/usr/bin/python3 manage.py migrate"},
		{[]string{"/bin/echo", "a b"}, `/bin/echo "a b"`},
		{[]string{"/bin/echo", `say "hi"`}, `/bin/echo "say \"hi\""`},
		{[]string{"/bin/echo", `it's`}, `/bin/echo "it's"`},
		{[]string{"/bin/echo", `C:\dir`}, `/bin/echo "C:\\dir"`},
		{[]string{"/bin/echo", "100%"}, `/bin/echo 100%%`},
		{[]string{"/bin/echo", "$HOME", "${X}"}, `/bin/echo $$HOME $${X}`},
		{[]string{"/bin/echo", ";", "x;y"}, `/bin/echo ";" x;y`},
		{[]string{"/bin/echo", ""}, `/bin/echo ""`},
		{[]string{"/bin/echo", `end\`}, `/bin/echo "end\\"`},
		{[]string{"/opt/my app/bin", "50% of $5"}, `"/opt/my app/bin" "50%% of $$5"`},
	}
	for _, tt := range tests {
		if got := QuoteExecArgs(tt.argv); got != tt.want {
			t.Errorf("QuoteExecArgs(%q) = %s, want %s", tt.argv, got, tt.want)
		}
	}
}

// goldenJobs are rendered into testdata/<name>.service and .timer; the
// integration tests verify the same files with systemd-analyze.
var goldenJobs = []JobUnit{
	{
		Name:             "fraisier-shop-backup",
		Description:      "Back up shop (100% of it)",
		WorkingDirectory: "/srv/shop/current",
		ExecStart:        []string{"/bin/sh", "-c", `echo "backup of $SHOP_ENV" > /dev/null`, "sh", "a b", ";"},
		Environment:      map[string]string{"SHOP_ENV": "production", "GREETING": `say "hi" 50%`},
		OnCalendar:       "*-*-* 03:00:00",
		Persistent:       true,
		AccuracySec:      time.Second,
		TimeoutSec:       90 * time.Minute,
		User:             "shop",
		Group:            "shop",
	},
	{
		Name:       "fraisier-minimal",
		ExecStart:  []string{"/bin/true"},
		OnCalendar: "hourly",
	},
}

func TestRenderGolden(t *testing.T) {
	for _, j := range goldenJobs {
		for _, kind := range []struct {
			suffix string
			render func(JobUnit) ([]byte, error)
		}{{".service", RenderService}, {".timer", RenderTimer}} {
			t.Run(j.Name+kind.suffix, func(t *testing.T) {
				got, err := kind.render(j)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", j.Name+kind.suffix)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s differs from golden (-want +got):\n%s", path, diff)
				}
			})
		}
	}
}

func TestRenderRejects(t *testing.T) {
	ok := JobUnit{Name: "job", ExecStart: []string{"/bin/true"}, OnCalendar: "daily"}
	tests := []struct {
		name   string
		mutate func(*JobUnit)
		want   string
	}{
		{"newline in description", func(j *JobUnit) { j.Description = "x\nExecStartPre=/bin/evil" }, "control character"},
		{"trailing backslash", func(j *JobUnit) { j.Description = `x\` }, `ends with "\"`},
		{"relative command", func(j *JobUnit) { j.ExecStart = []string{"python", "x.py"} }, "absolute path"},
		{"prefix character", func(j *JobUnit) { j.ExecStart = []string{"-/bin/true"} }, "absolute path"},
		{"no command", func(j *JobUnit) { j.ExecStart = nil }, "absolute path"},
		{"newline in argument", func(j *JobUnit) { j.ExecStart = []string{"/bin/echo", "a\nb"} }, "control character"},
		{"invalid UTF-8", func(j *JobUnit) { j.ExecStart = []string{"/bin/echo", "\xff"} }, "UTF-8"},
		{"bad env name", func(j *JobUnit) { j.Environment = map[string]string{"A B": "x"} }, "bad variable name"},
		{"newline in env", func(j *JobUnit) { j.Environment = map[string]string{"A": "x\ny"} }, "control character"},
		{"relative working dir", func(j *JobUnit) { j.WorkingDirectory = "srv/app" }, "absolute"},
		{"percent in schedule", func(j *JobUnit) { j.OnCalendar = "%H" }, "calendar"},
		{"bad user", func(j *JobUnit) { j.User = "root;x" }, "account name"},
		{"user starting with a dash", func(j *JobUnit) { j.User = "-x" }, "account name"},
		{"bad group", func(j *JobUnit) { j.Group = "a b" }, "account name"},
		{"bad name", func(j *JobUnit) { j.Name = "../job" }, "invalid unit name"},
		{"template name", func(j *JobUnit) { j.Name = "job@" }, "template"},
		{"negative timeout", func(j *JobUnit) { j.TimeoutSec = -time.Second }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := ok
			tt.mutate(&j)
			_, errS := RenderService(j)
			_, errT := RenderTimer(j)
			for _, err := range []error{errS, errT} {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("render error = %v, want one containing %q", err, tt.want)
				}
			}
		})
	}
	if _, err := RenderTimer(JobUnit{Name: "job", ExecStart: []string{"/bin/true"}}); err == nil {
		t.Error("RenderTimer without a schedule succeeded")
	}
}

func TestFormatSec(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second:             "1s",
		90 * time.Minute:        "5400s",
		1500 * time.Millisecond: "1500ms",
		time.Microsecond:        "1ms",
	} {
		if got := formatSec(d); got != want {
			t.Errorf("formatSec(%s) = %s, want %s", d, got, want)
		}
	}
}

// TestRenderAccounts: the users and groups fraises.yaml accepts render as
// User= and Group= as written.
func TestRenderAccounts(t *testing.T) {
	for _, tt := range []struct{ user, group string }{
		{"shop", "www-data"},
		{"1001", "1001"},
		{"build$", ""},
		{"", "deploy"},
	} {
		j := JobUnit{Name: "job", ExecStart: []string{"/bin/true"}, OnCalendar: "daily", User: tt.user, Group: tt.group}
		b, err := RenderService(j)
		if err != nil {
			t.Errorf("user %q group %q: %v", tt.user, tt.group, err)
			continue
		}
		for key, v := range map[string]string{"User=": tt.user, "Group=": tt.group} {
			if got := strings.Contains(string(b), "\n"+key+v+"\n"); got != (v != "") {
				t.Errorf("user %q group %q: %s%s rendered: %v\n%s", tt.user, tt.group, key, v, got, b)
			}
		}
	}
}
