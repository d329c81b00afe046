package systemd

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateUnitName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"web.service", true},
		{"fraisier-shop-backup.timer", true},
		{"app@1.service", true},
		{"app@.service", true},
		{`dev-disk-by\x2dlabel.target`, true},
		{"a:b_c.d.socket", true},
		{strings.Repeat("a", 247) + ".service", true},
		{strings.Repeat("a", 248) + ".service", false},
		{"", false},
		{"a b.service", false},
		{"../x.service", false},
		{"x/../../etc/passwd.service", false},
		{"-x.service", false},
		{"--user.service", false},
		{".hidden.service", false},
		{"x;rm.service", false},
		{"x$(id).service", false},
		{"x\x00.service", false},
		{"x\n.service", false},
		{"x.conf", false},
		{"x", false},
		{".service", false},
		{"@x.service", false},
		{"a@b@c.service", false},
		{"wéb.service", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateUnitName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateUnitName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidUnitName) {
				t.Errorf("error %v does not wrap ErrInvalidUnitName", err)
			}
		})
	}
}
