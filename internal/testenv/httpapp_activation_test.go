package testenv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTTPAppSocketActivation starts httpapp -systemd-socket the way a
// systemd socket unit does (the listening socket passed as file
// descriptor 3, by systemd-socket-activate) and checks that it serves on
// that socket, and that /slow answers after the duration asked.
func TestHTTPAppSocketActivation(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		Unavailable(t, "systemd-socket-activate not installed (package systemd)")
	}
	bin := BuildHTTPApp(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(activate, "-l", addr, bin, "-systemd-socket", "-dir", dir)
	var out SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	c := http.Client{Timeout: 5 * time.Second}
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.TrimSpace(body) != "v7" {
		t.Fatalf("GET / = %q, want v7\n%s", body, out.String())
	}
	if !strings.Contains(out.String(), "listening on "+addr) {
		t.Errorf("httpapp did not report listening on the passed socket %s:\n%s", addr, out.String())
	}

	start := time.Now()
	resp, err := c.Get("http://" + addr + "/slow?d=300ms")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || time.Since(start) < 300*time.Millisecond {
		t.Errorf("/slow?d=300ms: %d after %s, want 200 after 300ms or more", resp.StatusCode, time.Since(start))
	}
	resp, err = c.Get("http://" + addr + "/slow?d=forever")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/slow?d=forever: %d, want 400", resp.StatusCode)
	}
}

// TestHTTPAppAnswersAcceptedConnectionsWhenStopping checks httpapp's
// graceful stop: a connection it accepted before SIGTERM, whose request
// arrives after, is still answered (http.Server.Shutdown alone closes
// it unanswered).
func TestHTTPAppAnswersAcceptedConnectionsWhenStopping(t *testing.T) {
	bin := BuildHTTPApp(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(bin, "-addr", addr, "-dir", dir)
	var out SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	// Long enough for the server to accept the connection.
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: app\r\n\r\n")); err != nil {
		t.Fatalf("write the request after SIGTERM: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(conn)
	if err != nil || !strings.HasPrefix(string(answer), "HTTP/1.1 200") || !strings.Contains(string(answer), "v8") {
		t.Fatalf("request on a connection accepted before SIGTERM: %q, %v; want 200 with v8\n%s", answer, err, out.String())
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("httpapp exited with %v after its graceful stop\n%s", waitErr, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Errorf("httpapp still running 5 s after SIGTERM\n%s", out.String())
	}
}
