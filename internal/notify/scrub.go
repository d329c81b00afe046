package notify

import "strings"

// scrubber returns a function that replaces each secret in a string with
// [redacted]. secrets come longest first (config.SecretValues), so a
// secret inside a longer one never leaves the rest visible.
func scrubber(secrets []string) func(string) string {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}
