package notify_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// smtpServer is a minimal SMTP server on loopback: enough of RFC 5321
// (EHLO, MAIL, RCPT, DATA, QUIT) to take one mail, which it keeps.
type smtpServer struct {
	l     net.Listener
	mu    sync.Mutex
	mails []string
	rcpts []string
}

func newSMTPServer(t *testing.T) *smtpServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	say("220 localhost ESMTP test")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 localhost")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			s.mu.Lock()
			s.rcpts = append(s.rcpts, strings.TrimSpace(line[len("RCPT TO:"):]))
			s.mu.Unlock()
			say("250 ok")
		case cmd == "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.mails = append(s.mails, b.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

// TestMailToLocalSMTP: an smtp:// target delivers the message's text to
// every recipient, with the title as subject (no TLS offered: auto sends
// in the clear, as it should to a server that offers none).
func TestMailToLocalSMTP(t *testing.T) {
	srv := newSMTPServer(t)
	url := fmt.Sprintf("smtp://%s/?from=fraisier@example.test&to=ops@example.test,dev@example.test&fromname=fraisier", srv.l.Addr())
	db, cfg := setup(t, fmt.Sprintf("  targets:\n    hook: {url: %q}\n  default: {events: [all], targets: [hook]}\n", url))
	id := enqueue(t, db, failedMsg)
	sender(db, cfg).Round(context.Background())
	if m := message(t, db, id); m.State != store.OutboxSent {
		t.Fatalf("after sending: %+v", m)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.mails) != 1 || len(srv.rcpts) != 2 {
		t.Fatalf("server got %d mails for %v", len(srv.mails), srv.rcpts)
	}
	mail := srv.mails[0]
	for _, want := range []string{"Subject: api/production: deployment FAILED", "To: ops@example.test, dev@example.test",
		"Failed step: health\r\n", "More: fraisier show 7"} {
		if !strings.Contains(mail, want) {
			t.Errorf("mail lacks %q:\n%s", want, mail)
		}
	}
}

// TestMailExplicitTLSRefusedWithoutStartTLS: encryption=explicittls never
// sends in the clear to a server without STARTTLS.
func TestMailExplicitTLSRefusedWithoutStartTLS(t *testing.T) {
	srv := newSMTPServer(t)
	url := fmt.Sprintf("smtp://%s/?from=a@example.test&to=b@example.test&encryption=explicittls", srv.l.Addr())
	db, cfg := setup(t, fmt.Sprintf("  targets:\n    hook: {url: %q}\n  default: {events: [all], targets: [hook]}\n", url))
	id := enqueue(t, db, failedMsg)
	sender(db, cfg).Round(context.Background())
	if m := message(t, db, id); m.State != store.OutboxFailed || !strings.Contains(m.LastError, "STARTTLS") {
		t.Errorf("%+v", m)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.mails) != 0 {
		t.Errorf("a mail was sent in the clear")
	}
}
