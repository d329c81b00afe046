package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/notify"
	"github.com/fraiseql/fraisier/internal/store"
)

// The chat services fraisier sends through shoutrrr (Slack, Discord,
// Teams, Matrix, Telegram) have their hosts and HTTPS hard-coded in
// shoutrrr. These tests send to them for real, through a fake: fakeCloud,
// an HTTPS interception proxy on 127.0.0.1 that answers CONNECT for any
// host, terminates TLS with a certificate for that host signed by a CA
// the test made, records each request and answers as the service
// documents. It stands in for the services because they are on the
// internet, which these machines cannot and must not reach: the fake never
// dials anything.
//
// shoutrrr's clients reach it through the standard environment
// (HTTPS_PROXY, SSL_CERT_FILE): each of the five uses an http.Client with
// no Transport of its own, so Go's DefaultTransport, whose Proxy is
// http.ProxyFromEnvironment. That function reads the environment once per
// process and the root pool is loaded once too, so the sending runs in a
// child process: this test binary run again with chatChildEnv set, which
// runs only TestChatTargetsChild. The child opens the parent's state
// database, sends one round of the outbox with a real notify.Sender and
// exits; the parent then reads the outbox and what the fake recorded.

const chatChildEnv = "FRAISIER_TEST_CHAT_CHILD"

// The tokens in the target URLs. "Revoked" and "Dropped" tell the fake to
// answer with the service's error, or to drop the connection.
const (
	slackHook       = "T0FRAISR1-B0FRAISR2-SlackSecretXyz0123456789"
	slackHookBad    = "T0FRAISR1-B0FRAISR2-SlackRevokedXyz012345678"
	slackHookDrop   = "T0FRAISR1-B0FRAISR2-SlackDroppedXyz012345678"
	slackBot        = "123456789-123456789-BotSecretToken0123456789ab"
	slackBotBad     = "123456789-123456789-BotRevokedToken012345678ab"
	discordID       = "112233445566778899"
	discordToken    = "DiscordSecretToken_0123456789abcdef"
	discordBad      = "DiscordRevokedToken_0123456789abcde"
	discordDrop     = "DiscordDroppedToken_0123456789abcde"
	teamsGroup      = "11111111-2222-3333-4444-555555555555"
	teamsTenant     = "66666666-7777-8888-9999-000000000000"
	teamsAltID      = "0123456789abcdef0123456789abcdef"
	teamsOwner      = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	teamsExtra      = "V2TeamsSecretExtraId0123456789"
	teamsExtraBad   = "V2TeamsRevokedExtraId012345678"
	teamsExtraDrop  = "V2TeamsDroppedExtraId012345678"
	teamsHost       = "acme.webhook.office.com"
	matrixHost      = "matrix.example.org"
	matrixPassword  = "MatrixPassw0rd-Secret-42"
	matrixStatic    = "MatrixStaticAccessToken_0123456789"
	matrixIssued    = "syt_ZnJhaXNpZXI_IssuedByTheHomeserver_0123"
	telegramToken   = "123456789:TelegramSecretToken0123456789"
	telegramBad     = "987654321:TelegramRevokedToken012345678"
	telegramDrop    = "555555555:TelegramDroppedToken012345678"
	telegramChannel = "@fraisier_deploys"
)

var (
	teamsPath = func(extra string) string {
		return teamsGroup + "@" + teamsTenant + "/IncomingWebhook/" + teamsAltID + "/" + teamsOwner + "/" + extra
	}
	teamsURL = func(extra string) string {
		return "teams://" + teamsGroup + "@" + teamsTenant + "/" + teamsAltID + "/" + teamsOwner + "/" + extra + "?host=" + teamsHost
	}
)

// chatTargets are the targets of the tests, by name.
var chatTargets = map[string]string{
	"slack":        "slack://hook:" + slackHook + "@webhook",
	"slack_bad":    "slack://hook:" + slackHookBad + "@webhook",
	"slack_drop":   "slack://hook:" + slackHookDrop + "@webhook",
	"slackbot":     "slack://xoxb:" + slackBot + "@C0DEPLOYS",
	"slackbot_bad": "slack://xoxb:" + slackBotBad + "@C0DEPLOYS",
	"discord":      "discord://" + discordToken + "@" + discordID,
	"discord_bad":  "discord://" + discordBad + "@" + discordID,
	"discord_drop": "discord://" + discordDrop + "@" + discordID,
	"teams":        teamsURL(teamsExtra),
	"teams_bad":    teamsURL(teamsExtraBad),
	"teams_drop":   teamsURL(teamsExtraDrop),
	"matrix":       "matrix://fraisier:" + matrixPassword + "@" + matrixHost + "/?rooms=!deploys:example.org",
	"matrix_token": "matrix://:" + matrixStatic + "@" + matrixHost + "/?rooms=!deploys:example.org",
	"matrix_bad":   "matrix://fraisier:" + matrixPassword + "@" + matrixHost + "/?rooms=!locked:example.org",
	"matrix_drop":  "matrix://fraisier:" + matrixPassword + "@" + matrixHost + "/?rooms=!dropped:example.org",
	"telegram":     "telegram://" + telegramToken + "@telegram?chats=" + telegramChannel,
	"telegram_bad": "telegram://" + telegramBad + "@telegram?chats=" + telegramChannel,
	"telegram_drp": "telegram://" + telegramDrop + "@telegram?chats=" + telegramChannel,
}

// rolledBack is a deployment that rolled back at its health step, with
// text that needs escaping in JSON and HTML.
var rolledBack = notify.Message{Version: 1, Event: notify.EventRolledBack, Fraise: "api", Environment: "production",
	Deployment: 12, Status: "rolled_back", Trigger: "webhook", Actor: "ada via github", DurationMS: 4512,
	From:  &notify.Commit{SHA: strings.Repeat("a", 40), Subject: "main-1"},
	To:    &notify.Commit{SHA: strings.Repeat("b", 40), Subject: `fix: quote "health" & <paths> — café`},
	Error: "health: GET http://127.0.0.1:20755/health: status 500, want 200 (41 tries in 4.3s); rolled back",
	FailedStep: &notify.Step{Name: "health",
		Output: "try 40: status 500, want 200 (0ms)\ntry 41: status 500, want 200 (0ms)"},
	Show: "fraisier show 12"}

// chatRequest is one request the fake answered.
type chatRequest struct {
	connect string // the CONNECT authority
	sni     string
	host    string
	method  string
	path    string // decoded
	uri     string // as sent
	header  http.Header
	body    []byte
}

// fakeCloud is the interception proxy standing in for the chat services.
type fakeCloud struct {
	t     *testing.T
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	caPEM []byte

	mu       sync.Mutex
	certs    map[string]*tls.Certificate
	got      []chatRequest
	refused  []string // anything but CONNECT: the fake forwards nothing
	proxy    *httptest.Server
	api      *http.Server
	conns    chan net.Conn
	closed   chan struct{}
	connects map[net.Conn]string
}

func newFakeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	fc := &fakeCloud{t: t, certs: map[string]*tls.Certificate{}, conns: make(chan net.Conn),
		closed: make(chan struct{}), connects: map[net.Conn]string{}}
	fc.makeCA()
	fc.api = &http.Server{Handler: http.HandlerFunc(fc.serveAPI),
		TLSConfig:         &tls.Config{GetCertificate: fc.cert, NextProtos: []string{"http/1.1"}},
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = fc.api.ServeTLS(connListener{fc}, "", "") }()
	fc.proxy = httptest.NewServer(http.HandlerFunc(fc.serveProxy))
	t.Cleanup(func() {
		fc.proxy.Close()
		close(fc.closed)
		_ = fc.api.Close()
	})
	return fc
}

func (fc *fakeCloud) makeCA() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fc.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fraisier test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fc.t.Fatal(err)
	}
	fc.ca, _ = x509.ParseCertificate(der)
	fc.caKey = key
	fc.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// cert is the certificate for the host the client asked for (SNI).
func (fc *fakeCloud) cert(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if c := fc.certs[hello.ServerName]; c != nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: hello.ServerName},
		DNSNames: []string{hello.ServerName}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, fc.ca, &key.PublicKey, fc.caKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	fc.certs[hello.ServerName] = c
	return c, nil
}

// serveProxy answers CONNECT by handing the client's connection to the
// fake's own TLS server: it never dials the requested host.
func (fc *fakeCloud) serveProxy(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		fc.mu.Lock()
		fc.refused = append(fc.refused, r.Method+" "+r.URL.String())
		fc.mu.Unlock()
		http.Error(w, "this fake only answers CONNECT", http.StatusMethodNotAllowed)
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if buf.Reader.Buffered() > 0 { // a client that did not wait for the answer
		conn.Close()
		return
	}
	_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	fc.mu.Lock()
	fc.connects[conn] = r.Host
	fc.mu.Unlock()
	select {
	case fc.conns <- conn:
	case <-fc.closed:
		conn.Close()
	}
}

// connListener hands the proxied connections to the fake's TLS server.
type connListener struct{ fc *fakeCloud }

func (l connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.fc.conns:
		return c, nil
	case <-l.fc.closed:
		return nil, net.ErrClosed
	}
}
func (l connListener) Close() error   { return nil }
func (l connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (fc *fakeCloud) requests() []chatRequest {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]chatRequest(nil), fc.got...)
}

// record keeps r and returns it; the CONNECT authority is found by the
// connection's remote address.
func (fc *fakeCloud) record(r *http.Request) chatRequest {
	body, _ := io.ReadAll(r.Body)
	cr := chatRequest{sni: r.TLS.ServerName, host: r.Host, method: r.Method, path: r.URL.Path,
		uri: r.RequestURI, header: r.Header.Clone(), body: body}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for c, authority := range fc.connects {
		if c.RemoteAddr().String() == r.RemoteAddr {
			cr.connect = authority
		}
	}
	fc.got = append(fc.got, cr)
	return cr
}

// serveAPI answers as each service documents.
func (fc *fakeCloud) serveAPI(w http.ResponseWriter, r *http.Request) {
	cr := fc.record(r)
	if strings.Contains(cr.uri, "Dropped") || strings.Contains(cr.uri, "dropped") {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	host := strings.TrimSuffix(r.Host, ":443")
	bad := strings.Contains(cr.uri, "Revoked") || strings.Contains(r.Header.Get("Authorization"), "Revoked")
	jsonAnswer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case host == "hooks.slack.com": // incoming webhook: 200 "ok", or 4xx and a word
		if bad {
			http.Error(w, "invalid_token", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "ok")
	case host == "slack.com": // Web API: always 200, "ok" says
		if bad {
			jsonAnswer(http.StatusOK, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		jsonAnswer(http.StatusOK, map[string]any{"ok": true, "channel": "C0DEPLOYS", "ts": "1765080000.000100"})
	case host == "discord.com": // execute webhook without ?wait: 204
		if bad {
			jsonAnswer(http.StatusUnauthorized, map[string]any{"message": "Invalid Webhook Token", "code": 50027})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(host, ".webhook.office.com"): // connector: 200 "1"
		if bad {
			http.Error(w, "Microsoft Teams endpoint returned HTTP error 500", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "1")
	case host == matrixHost:
		fc.serveMatrix(w, r, cr, jsonAnswer)
	case host == "api.telegram.org":
		if bad {
			jsonAnswer(http.StatusUnauthorized, map[string]any{"ok": false, "error_code": 401, "description": "Unauthorized"})
			return
		}
		var req struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(cr.body, &req)
		jsonAnswer(http.StatusOK, map[string]any{"ok": true, "result": map[string]any{"message_id": 42, "date": time.Now().Unix(),
			"chat": map[string]any{"id": -1001234567890, "type": "channel", "username": "fraisier_deploys"}, "text": req.Text}})
	default:
		http.Error(w, "no such service in this fake", http.StatusNotFound)
	}
}

// serveMatrix answers the client-server API calls shoutrrr's matrix
// client makes: login flows, password login, join, send.
func (fc *fakeCloud) serveMatrix(w http.ResponseWriter, r *http.Request, cr chatRequest, jsonAnswer func(int, any)) {
	const api = "/_matrix/client/r0/"
	path := strings.TrimPrefix(cr.path, api)
	if path == "login" {
		if r.Method == http.MethodGet {
			jsonAnswer(http.StatusOK, map[string]any{"flows": []any{map[string]any{"type": "m.login.password"}}})
			return
		}
		var login struct {
			Type       string `json:"type"`
			Identifier struct {
				Type string `json:"type"`
				User string `json:"user"`
			} `json:"identifier"`
			Password string `json:"password"`
		}
		_ = json.Unmarshal(cr.body, &login)
		if login.Type != "m.login.password" || login.Identifier.User != "fraisier" || login.Password != matrixPassword {
			jsonAnswer(http.StatusForbidden, map[string]any{"errcode": "M_FORBIDDEN", "error": "Invalid username or password"})
			return
		}
		jsonAnswer(http.StatusOK, map[string]any{"user_id": "@fraisier:example.org", "access_token": matrixIssued,
			"home_server": "example.org", "device_id": "FRAISIERDEV"})
		return
	}
	token := r.URL.Query().Get("access_token")
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = a
	}
	if token != matrixIssued && token != matrixStatic {
		jsonAnswer(http.StatusUnauthorized, map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."})
		return
	}
	switch {
	case strings.HasPrefix(path, "join/"):
		jsonAnswer(http.StatusOK, map[string]any{"room_id": strings.TrimPrefix(path, "join/")})
	case strings.HasPrefix(path, "rooms/") && strings.Contains(path, "/send/m.room.message"):
		room := strings.TrimPrefix(path[:strings.Index(path, "/send/")], "rooms/")
		if room == "!locked:example.org" {
			jsonAnswer(http.StatusForbidden, map[string]any{"errcode": "M_FORBIDDEN",
				"error": "User @fraisier:example.org not in room " + room})
			return
		}
		jsonAnswer(http.StatusOK, map[string]any{"event_id": "$fraisier-event-1"})
	default:
		jsonAnswer(http.StatusNotFound, map[string]any{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
	}
}

// chatRun is one round of sending, in a child process, to the named
// targets: one rolledBack message each.
type chatRun struct {
	fc   *fakeCloud
	db   *store.DB
	cfg  *config.Config
	ids  map[string]int64
	logs string
}

func chatSection(names []string) string {
	var b strings.Builder
	b.WriteString("  timeout: 5s\n  targets:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "    %s: {url: %q}\n", n, chatTargets[n])
	}
	return b.String()
}

func chatConfig(section string) (*config.Config, error) {
	yaml := "fraises:\n  api:\n    type: api\n    repository: https://github.com/acme/api.git\n    environments:\n" +
		"      production: {branch: main, app_path: /srv/api}\nnotify:\n" + section
	return config.Parse("fraises.yaml", []byte(yaml), config.Options{
		LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile:  func(string) ([]byte, error) { return nil, os.ErrNotExist },
	})
}

func sendThroughFake(t *testing.T, msg notify.Message, names ...string) *chatRun {
	t.Helper()
	dir := t.TempDir()
	run := &chatRun{fc: newFakeCloud(t), ids: map[string]int64{}}
	section := chatSection(names)
	var err error
	if run.cfg, err = chatConfig(section); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run.db, err = store.Open(ctx, store.Options{Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.db.Close() })
	payload, _ := json.Marshal(msg)
	for _, n := range names {
		ids, err := run.db.EnqueueOutbox(ctx, store.OutboxMessage{Kind: store.OutboxNotification, Target: n,
			Event: msg.Event, Payload: string(payload)})
		if err != nil {
			t.Fatal(err)
		}
		run.ids[n] = ids[0]
	}
	caFile, noDir := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "no-certs")
	for _, err := range []error{os.WriteFile(caFile, run.fc.caPEM, 0o600), os.Mkdir(noDir, 0o700),
		os.WriteFile(filepath.Join(dir, "notify.yaml"), []byte(section), 0o600)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChatTargetsChild$", "-test.count=1", "-test.v")
	cmd.Env = childEnv(map[string]string{chatChildEnv: dir,
		"HTTPS_PROXY": run.fc.proxy.URL, "HTTP_PROXY": run.fc.proxy.URL, "NO_PROXY": "",
		"SSL_CERT_FILE": caFile, "SSL_CERT_DIR": noDir})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the sending child: %v\n%s", err, out)
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "sender.log"))
	run.logs = string(logs)
	return run
}

// childEnv is the environment without proxy or CA settings of its own,
// plus set.
func childEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", chatChildEnv:
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// TestChatTargetsChild is the sending half of the chat target tests: it
// does nothing unless run by sendThroughFake.
func TestChatTargetsChild(t *testing.T) {
	dir := os.Getenv(chatChildEnv)
	if dir == "" {
		return
	}
	// Refuse to send at all unless the proxy is in force: nothing may go
	// to the real services.
	for _, host := range []string{"hooks.slack.com", "discord.com", teamsHost, matrixHost, "api.telegram.org"} {
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+"/", nil)
		if p, err := http.ProxyFromEnvironment(req); err != nil || p == nil || p.Hostname() != "127.0.0.1" {
			t.Fatalf("no loopback proxy for %s (%v, %v): not sending", host, p, err)
		}
	}
	section, err := os.ReadFile(filepath.Join(dir, "notify.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := chatConfig(string(section))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	logs, err := os.Create(filepath.Join(dir, "sender.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	s := sender(db, cfg)
	s.Log = newTextLogger(logs)
	s.Round(context.Background())
}

// outcome is the message sent to target and its attempts.
func (run *chatRun) outcome(t *testing.T, target string) (store.OutboxMessage, []store.OutboxAttempt) {
	t.Helper()
	m := message(t, run.db, run.ids[target])
	atts, err := run.db.OutboxAttempts(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m, atts
}

// secrets are the strings no error or log may hold: the configuration's
// secret values, each token's parts, and the token the Matrix
// homeserver issued.
func (run *chatRun) secrets() []string {
	out := []string{matrixIssued}
	for _, s := range run.cfg.SecretValues() {
		out = append(out, s)
		if strings.Contains(s, "://") {
			continue
		}
		for _, part := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("-/,:@", r) }) {
			if len(part) >= 16 {
				out = append(out, part)
			}
		}
	}
	return out
}

// checkNoSecret fails if s holds a secret.
func (run *chatRun) checkNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range run.secrets() {
		if strings.Contains(s, sec) {
			t.Errorf("%s holds the secret %q:\n%s", what, sec, s)
		}
	}
}

// only returns the requests to host whose URI holds marker, failing if
// none was made.
func (run *chatRun) only(t *testing.T, host, marker string) []chatRequest {
	t.Helper()
	var out []chatRequest
	for _, r := range run.fc.requests() {
		if r.host == host && strings.Contains(r.uri, marker) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no request to %s with %q; the fake got %d requests", host, marker, len(run.fc.requests()))
	}
	return out
}

// checkProxied: every request came through CONNECT to port 443 of its
// own host, over TLS for that name, and the fake was asked for nothing else.
func (run *chatRun) checkProxied(t *testing.T) {
	t.Helper()
	for _, r := range run.fc.requests() {
		if r.connect != r.host+":443" || r.sni != r.host {
			t.Errorf("request %s %s: CONNECT %q, TLS name %q", r.method, r.host, r.connect, r.sni)
		}
	}
	run.fc.mu.Lock()
	defer run.fc.mu.Unlock()
	if len(run.fc.refused) > 0 {
		t.Errorf("requests that were not CONNECT: %v", run.fc.refused)
	}
}

func checkSent(t *testing.T, run *chatRun, target string) {
	t.Helper()
	m, atts := run.outcome(t, target)
	if m.State != store.OutboxSent || len(atts) != 1 || atts[0].Error != "" {
		t.Errorf("%s: %+v, attempts %+v; want sent at the first attempt", target, m, atts)
	}
}

func checkFailed(t *testing.T, run *chatRun, target, want string) {
	t.Helper()
	m, atts := run.outcome(t, target)
	if m.State != store.OutboxFailed || len(atts) != 1 || !strings.Contains(m.LastError, want) {
		t.Errorf("%s: state %s, error %q, %d attempts; want failed with %q", target, m.State, m.LastError, len(atts), want)
	}
	run.checkNoSecret(t, target+"'s recorded error", m.LastError)
	for _, a := range atts {
		run.checkNoSecret(t, target+"'s attempt", a.Error)
	}
	t.Logf("%s: recorded error %q", target, m.LastError)
}

func decode(t *testing.T, r chatRequest, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v\n%s", r.method, r.path, err, r.body)
	}
}

func checkJSONPost(t *testing.T, r chatRequest) {
	t.Helper()
	if r.method != http.MethodPost || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("%s %s with Content-Type %q; want a JSON POST", r.method, r.path, r.header.Get("Content-Type"))
	}
}

// tokenOnlyIn fails if token is in r anywhere but where: "path" or
// "authorization".
func tokenOnlyIn(t *testing.T, r chatRequest, token, where string) {
	t.Helper()
	inPath, inAuth := strings.Contains(r.path, token), strings.Contains(r.header.Get("Authorization"), token)
	if (where == "path") != inPath || (where == "authorization") != inAuth || strings.Contains(string(r.body), token) {
		t.Errorf("%s %s: token in path %v, in Authorization %v, in body %v; want it in the %s only",
			r.method, r.host, inPath, inAuth, strings.Contains(string(r.body), token), where)
	}
}

func logRequest(t *testing.T, r chatRequest) {
	t.Helper()
	body := string(r.body)
	if len(body) > 400 {
		body = body[:400] + "…"
	}
	t.Logf("%s https://%s%s\n  Content-Type: %s  Authorization: %q  User-Agent: %s\n  %s",
		r.method, r.host, r.uri, r.header.Get("Content-Type"), r.header.Get("Authorization"), r.header.Get("User-Agent"), body)
}

// What each service would show, rebuilt from the requests it got: the
// title and the text, line by line.

func slackShown(t *testing.T, reqs []chatRequest) (title, text string) {
	t.Helper()
	var lines []string
	for _, r := range reqs {
		var p struct {
			Text        string `json:"text"`
			Attachments []struct {
				Text string `json:"text"`
			} `json:"attachments"`
		}
		decode(t, r, &p)
		title = p.Text
		for _, a := range p.Attachments {
			lines = append(lines, a.Text)
		}
	}
	return title, strings.Join(lines, "\n")
}

func discordShown(t *testing.T, reqs []chatRequest) (title, text string) {
	t.Helper()
	var lines []string
	for i, r := range reqs {
		var p struct {
			Embeds []struct {
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"embeds"`
		}
		decode(t, r, &p)
		for j, e := range p.Embeds {
			if i == 0 && j == 0 {
				title = e.Title
			}
			lines = append(lines, e.Description)
		}
	}
	return title, strings.Join(lines, "\n")
}

func teamsShown(t *testing.T, reqs []chatRequest) (title, text string) {
	t.Helper()
	var lines []string
	for _, r := range reqs {
		var p struct {
			Type     string `json:"@type"`
			Context  string `json:"@context"`
			Title    string `json:"title"`
			Summary  string `json:"summary"`
			Sections []struct {
				Text string `json:"text"`
			} `json:"sections"`
		}
		decode(t, r, &p)
		if p.Type != "MessageCard" || p.Context != "http://schema.org/extensions" || p.Summary != p.Title {
			t.Errorf("card @type %q, @context %q, summary %q; want a MessageCard summarised by its title", p.Type, p.Context, p.Summary)
		}
		title = p.Title
		for _, s := range p.Sections {
			lines = append(lines, s.Text)
		}
	}
	return title, strings.Join(lines, "\n")
}

// matrixShown: shoutrrr sends Matrix the text alone (its first line is
// the title).
func matrixShown(t *testing.T, reqs []chatRequest) (title, text string) {
	t.Helper()
	var bodies []string
	for _, r := range reqs {
		var p struct {
			MsgType string `json:"msgtype"`
			Body    string `json:"body"`
		}
		decode(t, r, &p)
		if p.MsgType != "m.text" {
			t.Errorf("msgtype %q, want m.text", p.MsgType)
		}
		bodies = append(bodies, p.Body)
	}
	text = strings.Join(bodies, "\n")
	title, _, _ = strings.Cut(text, "\n")
	return title, text
}

// telegramShown: with a title, shoutrrr sends HTML, the title in bold
// and the text escaped.
func telegramShown(t *testing.T, reqs []chatRequest) (title, text string) {
	t.Helper()
	var texts []string
	for _, r := range reqs {
		var p struct {
			ChatID    string `json:"chat_id"`
			Text      string `json:"text"`
			ParseMode string `json:"parse_mode"`
		}
		decode(t, r, &p)
		if p.ChatID != telegramChannel || p.ParseMode != "HTML" {
			t.Errorf("chat %q, parse mode %q; want %s and HTML", p.ChatID, p.ParseMode, telegramChannel)
		}
		bold, rest, _ := strings.Cut(p.Text, "\n")
		title = html.UnescapeString(strings.TrimSuffix(strings.TrimPrefix(bold, "<b>"), "</b>"))
		texts = append(texts, html.UnescapeString(rest))
	}
	return title, strings.Join(texts, "\n")
}

func checkShown(t *testing.T, service string, shown func(*testing.T, []chatRequest) (string, string), reqs []chatRequest, m notify.Message) {
	t.Helper()
	title, text := shown(t, reqs)
	if title != m.Title() || text != m.Text() {
		t.Errorf("%s shows, in %d request(s), the title\n%s\nand the text\n%s\nwant\n%s\n%s", service, len(reqs), title, text, m.Title(), m.Text())
	}
}

// TestChatTargetsThroughShoutrrr: a rolled-back deployment's message,
// sent through shoutrrr to each chat service (through the fake), arrives
// as the service's API documents it, with fraisier's title and text
// intact and the token where the service expects it; the service's error
// answer makes the attempt fail with an error free of secrets.
func TestChatTargetsThroughShoutrrr(t *testing.T) {
	run := sendThroughFake(t, rolledBack, "slack", "slack_bad", "slackbot", "slackbot_bad", "discord", "discord_bad",
		"teams", "teams_bad", "matrix", "matrix_token", "matrix_bad", "telegram", "telegram_bad")
	run.checkProxied(t)
	run.checkNoSecret(t, "the sender's log", run.logs)

	t.Run("slack webhook", func(t *testing.T) {
		reqs := run.only(t, "hooks.slack.com", "SlackSecret")
		r := reqs[0]
		logRequest(t, r)
		checkJSONPost(t, r)
		if len(reqs) != 1 || r.path != "/services/"+strings.ReplaceAll(slackHook, "-", "/") {
			t.Errorf("%d requests, path %s; want one to /services/T…/B…/secret", len(reqs), r.path)
		}
		tokenOnlyIn(t, r, "SlackSecretXyz0123456789", "path")
		checkShown(t, "slack", slackShown, reqs, rolledBack)
		checkSent(t, run, "slack")
		checkFailed(t, run, "slack_bad", "invalid_token")
	})
	t.Run("slack bot", func(t *testing.T) {
		var good []chatRequest
		for _, x := range run.only(t, "slack.com", "/api/chat.postMessage") {
			if strings.Contains(x.header.Get("Authorization"), "BotSecret") {
				good = append(good, x)
			}
		}
		if len(good) != 1 {
			t.Fatalf("%d chat.postMessage requests with the good token, want 1", len(good))
		}
		logRequest(t, good[0])
		checkJSONPost(t, good[0])
		if good[0].header.Get("Authorization") != "Bearer xoxb-"+slackBot {
			t.Errorf("Authorization %q, want Bearer xoxb-<token>", good[0].header.Get("Authorization"))
		}
		tokenOnlyIn(t, good[0], slackBot, "authorization")
		var p struct {
			Channel string `json:"channel"`
		}
		decode(t, good[0], &p)
		if p.Channel != "C0DEPLOYS" {
			t.Errorf("channel %q, want the URL's C0DEPLOYS", p.Channel)
		}
		checkShown(t, "slack", slackShown, good, rolledBack)
		checkSent(t, run, "slackbot")
		checkFailed(t, run, "slackbot_bad", "invalid_auth")
	})
	t.Run("discord", func(t *testing.T) {
		reqs := run.only(t, "discord.com", discordToken)
		r := reqs[0]
		logRequest(t, r)
		checkJSONPost(t, r)
		if r.path != "/api/webhooks/"+discordID+"/"+discordToken {
			t.Errorf("path %s, want /api/webhooks/ID/TOKEN", r.path)
		}
		tokenOnlyIn(t, r, discordToken, "path")
		checkShown(t, "discord", discordShown, reqs, rolledBack)
		checkSent(t, run, "discord")
		checkFailed(t, run, "discord_bad", "401")
	})
	t.Run("teams", func(t *testing.T) {
		reqs := run.only(t, teamsHost, teamsExtra)
		r := reqs[0]
		logRequest(t, r)
		checkJSONPost(t, r)
		if len(reqs) != 1 || r.path != "/webhookb2/"+teamsPath(teamsExtra) {
			t.Errorf("%d requests, path %s; want one to /webhookb2/GROUP@TENANT/IncomingWebhook/ALTID/OWNER/EXTRA", len(reqs), r.path)
		}
		tokenOnlyIn(t, r, teamsExtra, "path")
		checkShown(t, "teams", teamsShown, reqs, rolledBack)
		checkSent(t, run, "teams")
		checkFailed(t, run, "teams_bad", "500")
	})
	t.Run("matrix", func(t *testing.T) { checkMatrix(t, run) })
	t.Run("telegram", func(t *testing.T) {
		reqs := run.only(t, "api.telegram.org", telegramToken)
		r := reqs[0]
		logRequest(t, r)
		checkJSONPost(t, r)
		if len(reqs) != 1 || r.path != "/bot"+telegramToken+"/sendMessage" {
			t.Errorf("%d requests, path %s; want one to /bot<token>/sendMessage", len(reqs), r.path)
		}
		tokenOnlyIn(t, r, telegramToken, "path")
		checkShown(t, "telegram", telegramShown, reqs, rolledBack)
		checkSent(t, run, "telegram")
		checkFailed(t, run, "telegram_bad", "Unauthorized")
	})
}

// checkMatrix: a user target logs in with its password (GET then POST
// /login), joins the room and sends the text with the access token the
// homeserver issued; a token target sends with its own token.
func checkMatrix(t *testing.T, run *chatRun) {
	var logins, sends, joins []chatRequest
	for _, r := range run.fc.requests() {
		switch {
		case r.host != matrixHost:
		case strings.HasSuffix(r.path, "/login"):
			logins = append(logins, r)
		case strings.Contains(r.path, "/join/"):
			joins = append(joins, r)
		case strings.Contains(r.path, "/send/"):
			sends = append(sends, r)
		}
	}
	for _, r := range append(append(logins, joins...), sends...) {
		logRequest(t, r)
	}
	var posted int
	for _, r := range logins {
		if r.method == http.MethodPost {
			posted++
			checkJSONPost(t, r)
			if !strings.Contains(string(r.body), `"password":"`+matrixPassword+`"`) ||
				!strings.Contains(string(r.body), `"identifier":{"type":"m.id.user","user":"fraisier"}`) {
				t.Errorf("login body %s", r.body)
			}
		}
	}
	// matrix and matrix_bad log in; matrix_token does not.
	if posted != 2 {
		t.Errorf("%d password logins, want 2 (one per user target and attempt)", posted)
	}
	var issued, static int
	for _, r := range append(joins, sends...) {
		checkJSONPost(t, r)
		if strings.Contains(string(r.body), matrixPassword) || strings.Contains(r.uri, matrixPassword) {
			t.Errorf("%s %s carries the password", r.method, r.path)
		}
		switch r.header.Get("Authorization") + "|" + r.uri[strings.Index(r.uri, "?"):] {
		case "|?access_token=" + matrixIssued:
			issued++
		case "|?access_token=" + matrixStatic:
			static++
		default:
			t.Errorf("%s %s: access token not as issued or configured", r.method, r.uri)
		}
	}
	if issued != 4 || static != 2 {
		t.Errorf("%d requests with the issued token, %d with the configured one; want 4 and 2", issued, static)
	}
	var deploys []chatRequest
	for _, r := range sends {
		if r.path == "/_matrix/client/r0/rooms/!deploys:example.org/send/m.room.message" {
			deploys = append(deploys, r)
		}
	}
	if len(deploys) != 2 {
		t.Fatalf("%d messages to !deploys, want 2", len(deploys))
	}
	for _, r := range deploys {
		checkShown(t, "matrix", matrixShown, []chatRequest{r}, rolledBack)
	}
	checkSent(t, run, "matrix")
	checkSent(t, run, "matrix_token")
	checkFailed(t, run, "matrix_bad", "not in room")
}

// TestChatTargetsConnectionDropped: a service that drops the connection
// before answering makes the attempt fail, and the transport's error,
// which quotes the request URL, leaves no token in what is recorded.
func TestChatTargetsConnectionDropped(t *testing.T) {
	run := sendThroughFake(t, rolledBack, "slack_drop", "discord_drop", "teams_drop", "matrix_drop", "telegram_drp")
	run.checkProxied(t)
	run.checkNoSecret(t, "the sender's log", run.logs)
	for _, target := range []string{"slack_drop", "discord_drop", "teams_drop", "matrix_drop", "telegram_drp"} {
		checkFailed(t, run, target, "EOF")
	}
}

// TestChatTargetsLongMessage: a message with the longest failing-step
// output fraisier quotes (15 lines) reaches each service whole.
func TestChatTargetsLongMessage(t *testing.T) {
	long := rolledBack
	var out []string
	for i := range 15 {
		out = append(out, fmt.Sprintf("try %d: GET /health: status 500, want 200 (0ms)", 27+i))
	}
	long.FailedStep = &notify.Step{Name: "health", Output: strings.Join(out, "\n")}
	run := sendThroughFake(t, long, "slack", "discord", "teams", "matrix_token", "telegram")
	run.checkProxied(t)
	for _, target := range []string{"slack", "discord", "teams", "matrix_token", "telegram"} {
		checkSent(t, run, target)
	}
	checkShown(t, "slack", slackShown, run.only(t, "hooks.slack.com", "SlackSecret"), long)
	checkShown(t, "discord", discordShown, run.only(t, "discord.com", discordToken), long)
	checkShown(t, "teams", teamsShown, run.only(t, teamsHost, teamsExtra), long)
	checkShown(t, "matrix", matrixShown, run.only(t, matrixHost, "/send/"), long)
	checkShown(t, "telegram", telegramShown, run.only(t, "api.telegram.org", telegramToken), long)
}
