package forge

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seedEvents pairs each testdata payload with the event header its forge
// sends with it.
var seedEvents = map[string]struct {
	kind  Kind
	event string
}{
	"github_push.json":                   {GitHub, "push"},
	"github_push_tag.json":               {GitHub, "push"},
	"github_push_delete.json":            {GitHub, "push"},
	"github_ping.json":                   {GitHub, "ping"},
	"github_pull_request.json":           {GitHub, "pull_request"},
	"github_issues.json":                 {GitHub, "issues"},
	"gitea_push.json":                    {Gitea, "push"},
	"gitea_push_delete.json":             {Gitea, "push"},
	"gitea_pull_request.json":            {Gitea, "pull_request"},
	"gitlab_push.json":                   {GitLab, "Push Hook"},
	"gitlab_tag_push.json":               {GitLab, "Tag Push Hook"},
	"gitlab_push_delete.json":            {GitLab, "Push Hook"},
	"gitlab_merge_request.json":          {GitLab, "Merge Request Hook"},
	"gitlab_pipeline.json":               {GitLab, "Pipeline Hook"},
	"bitbucket_push.json":                {Bitbucket, "repo:push"},
	"bitbucket_push_delete.json":         {Bitbucket, "repo:push"},
	"bitbucket_pullrequest_created.json": {Bitbucket, "pullrequest:created"},
	"bitbucket_server_refs_changed.json": {BitbucketServer, "repo:refs_changed"},
	"bitbucket_server_delete.json":       {BitbucketServer, "repo:refs_changed"},
	"bitbucket_server_ping.json":         {BitbucketServer, "diagnostics:ping"},
	"bitbucket_server_pr_opened.json":    {BitbucketServer, "pr:opened"},
	"github_check_suite.json":            {GitHub, "check_suite"},
	"github_workflow_run.json":           {GitHub, "workflow_run"},
	"github_status.json":                 {GitHub, "status"},
	"gitea_status.json":                  {Gitea, "status"},
	"gitea_workflow_run.json":            {Gitea, "workflow_run"},
	"forgejo_action_run_failure.json":    {Gitea, "action_run_failure"},
	"bitbucket_commit_status.json":       {Bitbucket, "repo:commit_status_updated"},
}

func TestSeedsCoverTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		if _, ok := seedEvents[filepath.Base(f)]; !ok {
			t.Errorf("%s is not a fuzz seed: add it to seedEvents", f)
		}
	}
}

// kindIndex maps the fuzzer's byte to a forge, so one target covers all.
func kindIndex(b uint8) Kind { return Kinds()[int(b)%len(Kinds())] }

func fuzzHeaders(k Kind, event string) http.Header {
	h := http.Header{}
	switch k {
	case GitHub:
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "d")
	case GitLab:
		h.Set("X-Gitlab-Event", event)
		h.Set("Idempotency-Key", "d")
	case Gitea:
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Delivery", "d")
	case Bitbucket:
		h.Set("X-Event-Key", event)
		h.Set("X-Request-UUID", "d")
	case BitbucketServer:
		h.Set("X-Event-Key", event)
		h.Set("X-Request-Id", "d")
	}
	return h
}

// FuzzParse feeds arbitrary bodies and event names to every forge's parser:
// it must never panic, and whatever Event it returns must satisfy the
// invariants the deploy engine relies on.
func FuzzParse(f *testing.F) {
	for name, s := range seedEvents {
		body, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for i, k := range Kinds() {
			if k == s.kind {
				f.Add(uint8(i), s.event, body)
			}
		}
	}
	f.Add(uint8(0), "push", []byte(`{"ref":"refs/heads/$(id)","after":"`+strings.Repeat("0", 40)+`"}`))
	f.Add(uint8(2), "System Hook", []byte(`{"object_kind":"push"}`))
	// Keys encoding/json matches ignoring case, and values of every JSON
	// type among those it skips.
	f.Add(uint8(0), "push", []byte(`{"ref":"refs/heads/main","Ref":"x","sender":{"login":"a","LOGIN":"b"},"deleted":true}`))
	f.Add(uint8(0), "ping", []byte(`{"repository":{"full_name":"a/b","owner":{"login":"c","x":[1,2.5e3,-0,{"y":null}]}},"pusher":{"name":"p"}}`))
	f.Fuzz(func(t *testing.T, ki uint8, event string, body []byte) {
		k := kindIndex(ki)
		ev, err := Parse(k, fuzzHeaders(k, event), body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := checkInvariants(ev); err != nil {
			t.Fatalf("Parse(%s, %q) returned an invalid event: %v\n%+v", k, event, err, ev)
		}
		if ev.Forge != k || ev.EventType != event {
			t.Fatalf("event %+v is not from %s %q", ev, k, event)
		}
	})
}

// FuzzAuthenticate feeds arbitrary signature headers: it must never panic,
// never accept a delivery that no configured secret signed, and always
// answer with an *AuthError.
func FuzzAuthenticate(f *testing.F) {
	f.Add(uint8(0), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "", "", []byte(ghDocBody), []byte(ghDocSecret), false, int64(0))
	f.Add(uint8(1), swSig, swID, swTS, []byte(swBody), []byte(swSecret), false, int64(0))
	f.Add(uint8(1), "", "", "", []byte("{}"), []byte("token"), true, int64(0))
	f.Add(uint8(2), "6a0b2cf9af617c753570dfabfe4454128a5d85fb58ee93cce549375fb520e471", "", "", []byte("{}"), []byte("gitea-secret"), false, int64(3))
	f.Add(uint8(3), "sha256=zz", "", "", []byte("{}"), []byte("s"), false, int64(-400))
	f.Fuzz(func(t *testing.T, ki uint8, sig, id, ts string, body, secret []byte, allowUnsigned bool, skew int64) {
		k := kindIndex(ki)
		h := http.Header{}
		switch k {
		case GitHub:
			h.Set("X-Hub-Signature-256", sig)
		case Gitea:
			h.Set("X-Gitea-Signature", sig)
		case Bitbucket, BitbucketServer:
			h.Set("X-Hub-Signature", sig)
		case GitLab:
			if id == "" && ts == "" {
				h.Set("X-Gitlab-Token", sig)
			} else {
				h.Set("Webhook-Signature", sig)
				h.Set("Webhook-Id", id)
				h.Set("Webhook-Timestamp", ts)
			}
		}
		now := swTime.Add(time.Duration(skew) * time.Second)
		secrets := [][]byte{[]byte("a fixed secret the fuzzer cannot guess"), secret}
		i, err := Authenticate(k, h, body, secrets, allowUnsigned, now)
		if err != nil {
			var ae *AuthError
			if i != -1 || !errors.As(err, &ae) {
				t.Fatalf("Authenticate = %d, %v", i, err)
			}
			// The message must not depend on the secret's content: with
			// another secret of the same length it reads the same.
			other := bytes.Map(func(r rune) rune { return r ^ 1 }, secret)
			if len(other) == len(secret) {
				_, err2 := Authenticate(k, h, body, [][]byte{secrets[0], other}, allowUnsigned, now)
				if err2 != nil && err2.Error() != err.Error() {
					t.Fatalf("error message depends on the secret: %q vs %q", err, err2)
				}
			}
			return
		}
		if i == 0 {
			t.Fatalf("the fuzzer guessed a secret it was never given")
		}
		if i == -1 && !allowUnsigned {
			t.Fatalf("unsigned delivery accepted without allowUnsigned")
		}
	})
}
