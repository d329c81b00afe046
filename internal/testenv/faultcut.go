package testenv

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// FaultCutOnce is a fake proxy in front of a server that injects the one
// fault the real server cannot produce on demand: it cuts the first
// response to a path ending in suffix after cutAfter bytes, as a proxy
// restarting mid-stream would. Every other request passes whole.
type FaultCutOnce struct {
	URL      string
	suffix   string
	cutAfter int
	mu       sync.Mutex
	cut      bool
	resumes  []string
}

// NewFaultCutOnce starts the proxy in front of target until the test ends.
func NewFaultCutOnce(t testing.TB, target, suffix string, cutAfter int) *FaultCutOnce {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &FaultCutOnce{suffix: suffix, cutAfter: cutAfter}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	proxy.ModifyResponse = func(resp *http.Response) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if strings.HasSuffix(resp.Request.URL.Path, f.suffix) && !f.cut {
			f.cut = true
			resp.Body = &cutReader{ReadCloser: resp.Body, left: f.cutAfter}
		}
		return nil
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, f.suffix) {
			f.mu.Lock()
			f.resumes = append(f.resumes, r.Header.Get("Last-Event-ID"))
			f.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	f.URL = s.URL
	return f
}

// Cut says whether the proxy cut a response, and the Last-Event-ID header
// of each request to the suffix, in order.
func (f *FaultCutOnce) Cut() (bool, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut, append([]string(nil), f.resumes...)
}

// cutReader fails once left bytes were read.
type cutReader struct {
	io.ReadCloser
	left int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("fault: connection cut")
	}
	n, err := c.ReadCloser.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}
