package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// mailTarget is an smtp:// target, in shoutrrr's URL syntax:
// smtp://user:password@host:port/?from=a@example.com&to=b@example.com,c@example.com
// with encryption=auto (STARTTLS when offered; the default), none,
// explicittls (STARTTLS required) or implicittls (TLS from the start,
// port 465), and optional fromname and subject. fraisier sends mail
// itself rather than through shoutrrr's smtp service, whose templates
// would keep the linker from dropping unused methods (+3 MB).
type mailTarget struct {
	host, port     string
	user, password string
	from, fromName string
	to             []string
	subject        string
	encryption     string
}

func parseMailURL(raw string) (*mailTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("the target URL does not parse")
	}
	q := u.Query()
	m := &mailTarget{host: u.Hostname(), port: u.Port(), from: q.Get("from"), fromName: q.Get("fromname"),
		subject: q.Get("subject"), encryption: strings.ToLower(q.Get("encryption"))}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	for to := range strings.SplitSeq(q.Get("to"), ",") {
		if to = strings.TrimSpace(to); to != "" {
			m.to = append(m.to, to)
		}
	}
	switch {
	case m.host == "":
		return nil, errors.New("smtp: the URL names no host")
	case m.from == "" || len(m.to) == 0:
		return nil, errors.New("smtp: from= and to= are required")
	}
	switch m.encryption {
	case "":
		m.encryption = "auto"
	case "auto", "none", "explicittls", "implicittls":
	default:
		return nil, fmt.Errorf("smtp: encryption=%s: use auto, none, explicittls or implicittls", m.encryption)
	}
	if m.port == "" {
		m.port = "25"
		if m.encryption == "implicittls" {
			m.port = "465"
		}
	}
	return m, nil
}

// send delivers one mail with m's text, within ctx.
func (m *mailTarget) send(ctx context.Context, msg *Message) error {
	addr := net.JoinHostPort(m.host, m.port)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: connect: %w", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	tlsConfig := &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	if m.encryption == "implicittls" {
		conn = tls.Client(conn, tlsConfig)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer c.Close()
	if err := m.startTLS(c, tlsConfig); err != nil {
		return err
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.password, m.host)); err != nil {
			return fmt.Errorf("smtp: authenticate: %w", err)
		}
	}
	if err := m.transmit(c, msg); err != nil {
		return err
	}
	return c.Quit()
}

func (m *mailTarget) startTLS(c *smtp.Client, cfg *tls.Config) error {
	if m.encryption == "none" || m.encryption == "implicittls" {
		return nil
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		if m.encryption == "explicittls" {
			return errors.New("smtp: the server does not offer STARTTLS (encryption=explicittls)")
		}
		return nil
	}
	if err := c.StartTLS(cfg); err != nil {
		return fmt.Errorf("smtp: STARTTLS: %w", err)
	}
	return nil
}

func (m *mailTarget) transmit(c *smtp.Client, msg *Message) error {
	if err := c.Mail(m.from); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp: RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	subject := m.subject
	if subject == "" {
		subject = msg.Title()
	}
	from := m.from
	if m.fromName != "" {
		from = mime.QEncoding.Encode("utf-8", m.fromName) + " <" + m.from + ">"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		from, strings.Join(m.to, ", "), mime.QEncoding.Encode("utf-8", subject), time.Now().UTC().Format(time.RFC1123Z))
	b.WriteString(strings.ReplaceAll(msg.Text(), "\n", "\r\n"))
	b.WriteString("\r\n")
	if _, err := w.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("smtp: write the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: end of DATA: %w", err)
	}
	return nil
}
