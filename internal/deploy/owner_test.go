package deploy

import (
	"os"
	"os/exec"
	"testing"
)

func TestOwnerRoundTrip(t *testing.T) {
	o, err := CurrentOwner()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseOwner(o.String())
	if err != nil || back != o {
		t.Fatalf("ParseOwner(%s) = %+v, %v", o, back, err)
	}
	for _, bad := range []string{"", "h/1/2", "h/x/2/n", "h/1/x/n"} {
		if _, err := ParseOwner(bad); err == nil {
			t.Errorf("ParseOwner(%q) accepted", bad)
		}
	}
}

func TestHolderDead(t *testing.T) {
	me, err := CurrentOwner()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	exited := me
	exited.PID = cmd.Process.Pid
	reused := me
	reused.StartTick++ // our pid, but not the process that took the lock
	elsewhere := me
	elsewhere.Host = "another-host"
	elsewhere.PID = cmd.Process.Pid

	tests := []struct {
		name  string
		owner string
		dead  bool
	}{
		{"this process", me.String(), false},
		{"exited process", exited.String(), true},
		{"pid reused by another process", reused.String(), true},
		{"another host is never judged", elsewhere.String(), false},
		{"unparseable owner is left alone", "garbage", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HolderDead(tt.owner, me.Host); got != tt.dead {
				t.Errorf("HolderDead = %v, want %v", got, tt.dead)
			}
		})
	}
	if _, err := processStartTick(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
