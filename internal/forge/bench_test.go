package forge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// benchPush returns a GitHub push of about 5 KB, the intake's reference
// delivery: the documented push with commits repeated to size.
func benchPush(tb testing.TB) []byte {
	base := string(readTestdata(tb, "github_push.json"))
	commit := `{"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433", "distinct": true, "message": "Update README.md", "timestamp": "2019-05-15T15:20:30Z", "url": "https://github.com/Codertocat/Hello-World/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "author": {"name": "Codertocat", "email": "21031067+Codertocat@users.noreply.github.com", "username": "Codertocat"}, "added": [], "removed": [], "modified": ["README.md"]},`
	var b strings.Builder
	for b.Len()+len(base) < 5*1024 {
		b.WriteString(commit)
	}
	body := strings.Replace(base, `"commits": [`, `"commits": [`+b.String(), 1)
	return []byte(body)
}

func BenchmarkAuthenticateParseGitHub5KB(b *testing.B) {
	body := benchPush(b)
	secret := []byte("a webhook secret of realistic length, 40+")
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	h := githubHeaders("push")
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	secrets := [][]byte{secret}
	now := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Authenticate(GitHub, h, body, secrets, false, now); err != nil {
			b.Fatal(err)
		}
		ev, err := Parse(GitHub, h, body)
		if err != nil || ev.Type != Push {
			b.Fatal(ev, err)
		}
	}
}

func TestBenchPushSize(t *testing.T) {
	body := benchPush(t)
	if n := len(body); n < 5*1024 || n > 6*1024 {
		t.Fatalf("benchmark body is %d bytes, want about 5 KB", n)
	}
	if _, err := Parse(GitHub, githubHeaders("push"), body); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCheckJSON5KB(b *testing.B) {
	body := benchPush(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, ok := checkJSON(body); !ok {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkParseGitHub5KB is Parse alone on the reference push, the part
// of a delivery's handling that decodes JSON.
func BenchmarkParseGitHub5KB(b *testing.B) {
	body := benchPush(b)
	h := githubHeaders("push")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ev, err := Parse(GitHub, h, body)
		if err != nil || ev.Type != Push {
			b.Fatal(ev, err)
		}
	}
}
