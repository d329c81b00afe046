package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestExampleIsValid keeps examples/fraises.yaml loading with no problems
// and no environment at all, as its comments promise.
func TestExampleIsValid(t *testing.T) {
	cfg, err := Load("../../examples/fraises.yaml", Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	if err != nil {
		t.Fatalf("examples/fraises.yaml:\n%v", err)
	}
	want := Summary{Fraises: 3, Environments: 4, Jobs: 2}
	if got := cfg.Summary(); got != want {
		t.Errorf("summary = %+v, want %+v", got, want)
	}
	etl, err := cfg.Lookup("hello-etl", "production")
	if err != nil {
		t.Fatal(err)
	}
	if etl.Code == nil || etl.Code.ID() != "hello/production" || etl.CodePath() != "/tmp/fraisier-demo/srv/hello" {
		t.Errorf("hello-etl/production runs the code of %v at %q", etl.Code, etl.CodePath())
	}
}

// TestInvalidExample pins the all-at-once report for examples/invalid.yaml,
// which the CLI's tests also use.
func TestInvalidExample(t *testing.T) {
	data, err := os.ReadFile("../../examples/invalid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("invalid.yaml", data, Options{LookupEnv: mapEnv(nil), ReadFile: noFiles})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *Error", err)
	}
	if len(cerr.Problems) < 20 {
		t.Errorf("only %d problems; the example is meant to show many", len(cerr.Problems))
	}
	golden(t, filepath.Join("testdata", "invalid.golden"), err.Error()+"\n")
}
