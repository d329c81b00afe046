package forge

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The one-pass decoder must take the pushes and pings forges really send,
// or the intake silently pays for encoding/json.
func TestDecodeGitHubPushTakesRealPayloads(t *testing.T) {
	for _, name := range []string{"github_push.json", "github_push_tag.json", "github_push_delete.json", "github_ping.json",
		"gitea_push.json", "gitea_push_delete.json"} {
		body := readTestdata(t, name)
		var fast ghPayload
		if !decodeGitHubPush(body, &fast) {
			t.Errorf("%s: the one-pass decoder gave up", name)
			continue
		}
		var want ghPayload
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, fast); d != "" {
			t.Errorf("%s: decoded differently from encoding/json (-want +got):\n%s", name, d)
		}
	}
	if body := benchPush(t); !decodeGitHubPush(body, new(ghPayload)) {
		t.Error("the 5 KB benchmark push: the one-pass decoder gave up")
	}
}

// Each of these is left to encoding/json: a wanted field it would decode
// differently, or a body it would refuse.
func TestDecodeGitHubPushGivesUp(t *testing.T) {
	const sha = `"0000000000000000000000000000000000000001"`
	for _, body := range []string{
		``, `[]`, `null`, `"x"`, `{`, `{"ref":}`, `{"ref":"a",}`, `{"ref":"a"} x`, `{"ref":"a"}{}`,
		`{"ref":"a","ref":"b"}`,            // repeated: last wins
		`{"Ref":"a"}`,                      // matched ignoring case
		`{"REPOSITORY":{}}`,                // the same, an object
		`{"repository":{"FULL_NAME":"a"}}`, // the same, nested
		`{"ref":"a\u0062"}`,                // an escape in a wanted value
		`{"r\u0065f":"a"}`,                 // an escape in a key
		`{"ref":null}`, `{"ref":1}`, `{"repository":null}`, `{"repository":[]}`, `{"deleted":"yes"}`, `{"deleted":null}`,
		`{"action":"opened"}`,       // a pull request field
		`{"ref":"a` + "\x01" + `"}`, // a control byte in a string
		"{\"ref\":\"\xff\"}",        // invalid UTF-8
		`{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1e}`, `{"x":tru}`, `{"x":"\q"}`, `{"x":"\u12"}`,
		`{"x":[1,]}`, `{"x":[1 2]}`, `{"x":{"a"}}`, `{"x":{"a":1,}}`,
		strings.Repeat(`{"x":`, MaxJSONDepth+1) + `1` + strings.Repeat(`}`, MaxJSONDepth+1),
		`{"after":` + sha + `,"after":` + sha + `}`,
		`{"` + "\u017f" + `ender":{}}`, // "ſender" folds to "sender"
		`{"sender":{"u` + "\u017f" + `ername":"x"}}`,
		`{"pu` + "\u017f" + `her":{}}`,
	} {
		if decodeGitHubPush([]byte(body), new(ghPayload)) {
			t.Errorf("%.80q: decoded, want it left to encoding/json", body)
		}
	}
	// Decoded: keys that are no field even under Unicode folding (the
	// Kelvin sign folds to k, which no field of a push has) and nesting as
	// deep as checkJSON allows.
	for _, body := range []string{
		`{"` + "\u212a" + `ey":1,"x` + "\u017f" + `":{"login":1}}`,
		`{"sender":{"` + "\u212a" + `":"x"}}`,
		strings.Repeat(`{"x":`, MaxJSONDepth) + `1` + strings.Repeat(`}`, MaxJSONDepth),
	} {
		if !decodeGitHubPush([]byte(body), new(ghPayload)) {
			t.Errorf("%.80q: gave up, want it decoded", body)
		}
	}
}

// FuzzDecodeGitHubPush holds the one-pass decoder to encoding/json: when
// it decodes a body, checkJSON and json.Unmarshal accept that body and
// decode the same payload.
func FuzzDecodeGitHubPush(f *testing.F) {
	for _, name := range []string{"github_push.json", "github_push_tag.json", "github_push_delete.json", "github_ping.json",
		"gitea_push.json", "gitea_push_delete.json", "github_pull_request.json"} {
		body, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"ref":"refs/heads/main","Ref":"x","sender":{"login":"a","LOGIN":"b"},"deleted":true}`))
	f.Add([]byte(`{"repository":{"full_name":"a/b","owner":{"login":"c","x":[1,2.5e3,-0,{"y":null}]}},"pusher":{"name":"p"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast ghPayload
		if !decodeGitHubPush(body, &fast) {
			return
		}
		if msg, ok := checkJSON(body); !ok {
			t.Fatalf("decoded %q, which checkJSON refuses: %s", body, msg)
		}
		var want ghPayload
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("decoded %q, which encoding/json refuses: %v", body, err)
		}
		if d := cmp.Diff(want, fast); d != "" {
			t.Fatalf("%q decoded differently from encoding/json (-want +got):\n%s", body, d)
		}
	})
}
