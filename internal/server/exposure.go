package server

import (
	"fmt"
	"net"
	"net/netip"
)

// ExposureError is the refusal to serve the read API without a token on
// an address other hosts can reach.
type ExposureError struct {
	Addr string
}

func (e *ExposureError) Error() string {
	return fmt.Sprintf("refusing to serve on %s without server.api_token: it is not a loopback address, "+
		"and /api/* and /providers would show deployments and their step output to anyone who reaches it; "+
		"set server.api_token (or server.api_token_file), listen on a loopback address or a unix: socket, "+
		"or set server.open_api: true to serve them without a token on purpose", e.Addr)
}

// CheckListener refuses a listener other hosts can reach when the read API
// has no token and server.open_api is not set. Loopback addresses and
// unix sockets are local, whether opened by fraisier or passed by systemd;
// a wildcard address (0.0.0.0, [::]) listens on every interface and is not.
func (s *Server) CheckListener(l net.Listener) error {
	if len(s.apiToken) > 0 || s.openAPI || local(l.Addr()) {
		return nil
	}
	return &ExposureError{Addr: l.Addr().String()}
}

// local says whether only this host can reach addr.
func local(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ok && ip.Unmap().IsLoopback()
	}
	return false
}
