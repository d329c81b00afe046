package systemd

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDropinNames(t *testing.T) {
	tests := []struct {
		unit string
		want []string
	}{
		{"web.service", []string{"web.service", "service"}},
		{"a-b-c.service", []string{"a-b-c.service", "a-b-.service", "a-.service", "service"}},
		{"getty@tty1.service", []string{"getty@tty1.service", "getty@.service", "service"}},
		{"my-app@1.service", []string{"my-app@1.service", "my-app@.service", "my-.service", "service"}},
		{"job.timer", []string{"job.timer", "timer"}},
	}
	for _, tt := range tests {
		if got := dropinNames(tt.unit); !slices.Equal(got, tt.want) {
			t.Errorf("dropinNames(%q) = %q, want %q", tt.unit, got, tt.want)
		}
	}
}

// TestPendingOnDisk lays out unit directories as a manager would search
// them and checks which files count as not loaded.
func TestPendingOnDisk(t *testing.T) {
	const unit = "web-app.service"
	tests := []struct {
		name    string
		files   map[string]string // relative to root: content, or "->target" for a symlink
		fragDir string            // "hi" or "lo": where the loaded fragment is
		dropins []string          // loaded drop-ins, relative to root
		pending []string          // relative to root
	}{
		{name: "as loaded", files: map[string]string{"lo/web-app.service": "x", "lo/web-app.service.d/a.conf": "x"},
			fragDir: "lo", dropins: []string{"lo/web-app.service.d/a.conf"}},
		{name: "new drop-in", files: map[string]string{"lo/web-app.service": "x", "lo/web-app.service.d/a.conf": "x"},
			fragDir: "lo", pending: []string{"lo/web-app.service.d/a.conf"}},
		{name: "new drop-in in a higher directory, same name", files: map[string]string{
			"lo/web-app.service": "x", "lo/web-app.service.d/a.conf": "x", "hi/web-app.service.d/a.conf": "y"},
			fragDir: "lo", dropins: []string{"lo/web-app.service.d/a.conf"}, pending: []string{"hi/web-app.service.d/a.conf"}},
		{name: "lower drop-in hidden by the loaded higher one", files: map[string]string{
			"lo/web-app.service": "x", "lo/web-app.service.d/a.conf": "x", "hi/web-app.service.d/a.conf": "y"},
			fragDir: "lo", dropins: []string{"hi/web-app.service.d/a.conf"}},
		{name: "new prefix drop-in", files: map[string]string{"lo/web-app.service": "x", "hi/web-.service.d/p.conf": "x"},
			fragDir: "lo", pending: []string{"hi/web-.service.d/p.conf"}},
		{name: "new kind drop-in", files: map[string]string{"lo/web-app.service": "x", "lo/service.d/k.conf": "x"},
			fragDir: "lo", pending: []string{"lo/service.d/k.conf"}},
		{name: "masked drop-in is not loaded", files: map[string]string{"lo/web-app.service": "x", "hi/web-app.service.d/a.conf": "->/dev/null"},
			fragDir: "lo"},
		{name: "not a .conf", files: map[string]string{"lo/web-app.service": "x", "lo/web-app.service.d/README": "x"},
			fragDir: "lo"},
		{name: "new fragment above the loaded one", files: map[string]string{"lo/web-app.service": "x", "hi/web-app.service": "y"},
			fragDir: "lo", pending: []string{"hi/web-app.service"}},
		{name: "fragment below the loaded one", files: map[string]string{"lo/web-app.service": "x", "hi/web-app.service": "y"},
			fragDir: "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, content := range tt.files {
				p := filepath.Join(root, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				var err error
				if target, ok := cutArrow(content); ok {
					err = os.Symlink(target, p)
				} else {
					err = os.WriteFile(p, []byte(content), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			f := reloadFacts{unitPath: []string{filepath.Join(root, "hi"), filepath.Join(root, "lo")},
				fragment: filepath.Join(root, tt.fragDir, unit)}
			for _, d := range tt.dropins {
				f.dropins = append(f.dropins, filepath.Join(root, d))
			}
			var want []string
			for _, rel := range tt.pending {
				want = append(want, filepath.Join(root, rel))
			}
			if got := pendingOnDisk(unit, f); !slices.Equal(got, want) {
				t.Errorf("pendingOnDisk = %q, want %q", got, want)
			}
		})
	}
}

func cutArrow(s string) (string, bool) {
	if len(s) > 2 && s[:2] == "->" {
		return s[2:], true
	}
	return "", false
}
