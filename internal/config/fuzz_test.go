package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes through every pass. Whatever the input,
// Parse must not panic, and it returns either a configuration or an *Error
// whose problems all have a message.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../../examples/fraises.yaml", "../../examples/invalid.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range ruleCases {
		f.Add([]byte(tc.yaml))
	}
	env := mapEnv(map[string]string{"HOME": "/root", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, Options{LookupEnv: env, ReadFile: noFiles})
		if err == nil {
			if cfg == nil {
				t.Fatal("no configuration and no error")
			}
			_ = cfg.Summary()
			return
		}
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("error is not *Error: %v", err)
		}
		for _, p := range cerr.Problems {
			if p.Message == "" {
				t.Fatalf("problem without a message: %+v", p)
			}
		}
	})
}
