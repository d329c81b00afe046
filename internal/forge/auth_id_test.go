package forge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// TestSignedWebhookIDIsTheDeliveryID: a GitLab delivery that
// Authenticate accepts as signed has its webhook-id as DeliveryID, however
// long the id; one too long to serve as a delivery id is refused, for a
// signed delivery without an id could not be told from its replays.
func TestSignedWebhookIDIsTheDeliveryID(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      string
		wantErr error
	}{
		{"a UUID", "7f9c0c1e-5a1b-4c1d-9f4e-2b8f0a3c6d7e", nil},
		{"the longest delivery id", strings.Repeat("i", MaxDeliveryIDLen), nil},
		{"one byte longer", strings.Repeat("i", MaxDeliveryIDLen+1), ErrBadSignature},
		{"256 bytes", strings.Repeat("i", 256), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(tt.id + "." + swTS + "." + swBody))
			sig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
			h := with(swHeaders(sig), "Webhook-Id", tt.id)
			_, err := Authenticate(GitLab, h, []byte(swBody), secrets(swSecret), false, swTime)
			if got := DeliveryID(GitLab, h); err == nil && got != tt.id {
				t.Errorf("accepted as signed, DeliveryID = %q; want the signed webhook-id (%d bytes)", got, len(tt.id))
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Authenticate = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
