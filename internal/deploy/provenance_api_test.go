package deploy

import (
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestRequestedRefOfQueuedRequests: a deployment the deploy API queued
// ran from the branch it named, as a push's did, so that the next push of
// that branch must descend from it.
func TestRequestedRefOfQueuedRequests(t *testing.T) {
	for _, tc := range []struct {
		trigger   store.Trigger
		requested string
		want      string
	}{
		{store.TriggerWebhook, "refs/heads/main@0123456789ab", "refs/heads/main"},
		{store.TriggerAPI, "refs/heads/main@0123456789ab", "refs/heads/main"},
		{store.TriggerAPI, "0123456789abcdef0123456789abcdef01234567", ""},
		{store.TriggerCLI, "refs/heads/main", "refs/heads/main"},
		{store.TriggerCLI, "main", "refs/heads/main"},
	} {
		got := requestedRefOf(store.Deployment{Trigger: tc.trigger, RequestedRef: tc.requested}, "main")
		if got != tc.want {
			t.Errorf("%s %q: %q, want %q", tc.trigger, tc.requested, got, tc.want)
		}
	}
}
