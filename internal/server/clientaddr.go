package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request comes from: the peer, or when the
// peer is a trusted proxy, the nearest address in X-Forwarded-For that is
// not one. Anyone can write X-Forwarded-For, so it is believed only from
// configured proxies.
func (s *Server) clientAddr(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !s.trusted(addr) {
		if peer == "" || peer == "@" {
			return "unix"
		}
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		for _, a := range strings.Split(h, ",") {
			all = append(all, strings.TrimSpace(a))
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(all[i])
		if err != nil {
			// Garbage in the chain: what the trusted proxy saw is all we
			// can believe.
			return addr.String()
		}
		if !s.trusted(a) {
			return a.String()
		}
		addr = a
	}
	return addr.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func parseProxies(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// sourceOf is what the rate limit, the body budget and the refusal sample
// count a client address as: an IPv4 address itself, and for IPv6 its /64,
// the block one site is given, so that a host cannot become thousands of
// sources by changing the last bits of its address.
func sourceOf(client string) string {
	addr, err := netip.ParseAddr(client)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return client
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return client
	}
	return p.String()
}
