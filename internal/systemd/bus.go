package systemd

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// This file is a minimal D-Bus client for one purpose: asking a systemd
// manager about units over its private socket, in process. Every systemctl
// run costs 10-12 ms (about 6 ms of it starting systemctl), and a deploy
// asks systemd two questions around each restart; a question over an open
// socket costs well under a millisecond. The private socket speaks D-Bus
// peer to peer: no message bus, no Hello, EXTERNAL authentication with the
// caller's uid. It is what systemctl itself uses as root (and as a user for
// --user), so it is there wherever systemctl would reach the manager that
// way. Only what fraisier asks is implemented: method calls with string
// arguments, and a decoder for any reply. Callers fall back to systemctl
// whenever anything here fails.
//
// No dependency (godbus/dbus) for this: the subset is a few hundred lines,
// and the project keeps its dependencies few.

// busMaxMessage bounds what a reply may claim to be (the D-Bus limit is
// 128 MiB); a peer that says more is not a systemd worth believing.
const busMaxMessage = 1 << 27

// D-Bus message types.
const (
	msgMethodCall   = 1
	msgMethodReturn = 2
	msgError        = 3
	msgSignal       = 4
)

// Header field codes.
const (
	fieldPath        = 1
	fieldInterface   = 2
	fieldMember      = 3
	fieldErrorName   = 4
	fieldReplySerial = 5
	fieldDestination = 6
	fieldSignature   = 8
)

// errBusUnavailable says the private socket cannot be used here (absent,
// not ours to use): the caller falls back to systemctl without a word.
var errBusUnavailable = errors.New("systemd private socket unavailable")

// BusError is an error reply from the manager, such as
// org.freedesktop.systemd1.NoSuchUnit.
type BusError struct {
	Name    string
	Message string
}

func (e *BusError) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// busConn is one authenticated connection to a manager's private socket.
// It is used by one goroutine at a time.
type busConn struct {
	conn   *net.UnixConn
	r      *bufio.Reader
	serial uint32
	stop   func() bool // undoes the context watch
}

// dialBus connects to the private socket at path and authenticates. The
// connection honours ctx (and timeout, if not zero) for its whole life.
func dialBus(ctx context.Context, path string, timeout time.Duration) (*busConn, error) {
	if path == "" {
		return nil, errBusUnavailable
	}
	var d net.Dialer
	if timeout > 0 {
		d.Deadline = time.Now().Add(timeout)
	}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w: %w", errBusUnavailable, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	b := &busConn{conn: c.(*net.UnixConn), r: bufio.NewReaderSize(c, 64<<10)}
	if timeout > 0 {
		_ = b.conn.SetDeadline(time.Now().Add(timeout))
	}
	// A cancelled context unblocks any read or write at once.
	b.stop = context.AfterFunc(ctx, func() { _ = b.conn.SetDeadline(time.Unix(1, 0)) })
	if err := b.auth(); err != nil {
		b.Close()
		return nil, fmt.Errorf("authenticate to %s: %w", path, err)
	}
	return b, nil
}

func (b *busConn) Close() error {
	b.stop()
	return b.conn.Close()
}

// auth runs the SASL exchange: the leading NUL byte, EXTERNAL with our uid
// in hex-encoded decimal (checked by the server against SO_PEERCRED), and
// BEGIN, sent together before the server's OK as sd-bus itself does. Not
// only to save a round trip: systemd 252 leaves a message that arrives in
// the same read as BEGIN unprocessed until more data comes, so the first
// call must not follow BEGIN closely; it is sent only once OK was read,
// after BEGIN is already with the server.
func (b *busConn) auth() error {
	uid := hex.EncodeToString([]byte(strconv.Itoa(os.Geteuid())))
	if _, err := io.WriteString(b.conn, "\x00AUTH EXTERNAL "+uid+"\r\nBEGIN\r\n"); err != nil {
		return err
	}
	line, err := b.r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "OK ") {
		return fmt.Errorf("EXTERNAL refused: %q", strings.TrimSpace(line))
	}
	return nil
}

// call sends a method call whose arguments are all strings and returns
// the reply's body, decoded as its signature says.
func (b *busConn) call(path, iface, member string, args ...string) ([]any, error) {
	bodies, err := b.calls(busCall{path, iface, member, args})
	if err != nil {
		return nil, err
	}
	return bodies[0], nil
}

// busCall is one method call with string arguments.
type busCall struct {
	path, iface, member string
	args                []string
}

// calls sends several method calls at once and returns their replies'
// bodies in order: one round trip instead of several, on a machine where
// each costs a few hundred microseconds. Signals the manager sends
// meanwhile (it sends them to every private connection) are skipped.
func (b *busConn) calls(cs ...busCall) ([][]any, error) {
	var out []byte
	first := b.serial + 1
	for _, c := range cs {
		b.serial++
		out = append(out, encodeCall(b.serial, c.path, c.iface, c.member, c.args)...)
	}
	if _, err := b.conn.Write(out); err != nil {
		return nil, fmt.Errorf("%s.%s: send: %w", cs[0].iface, cs[0].member, err)
	}
	bodies := make([][]any, len(cs))
	for left := len(cs); left > 0; {
		m, err := readMessage(b.r)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: read reply: %w", cs[0].iface, cs[0].member, err)
		}
		i := int(m.replySerial - first)
		if (m.typ != msgMethodReturn && m.typ != msgError) || m.replySerial < first || i >= len(cs) {
			continue
		}
		c := cs[i]
		if m.typ == msgError {
			be := &BusError{Name: m.errorName}
			if len(m.body) > 0 {
				if s, ok := m.body[0].(string); ok {
					be.Message = s
				}
			}
			return nil, fmt.Errorf("%s.%s %s: %w", c.iface, c.member, strings.Join(c.args, " "), be)
		}
		bodies[i] = m.body
		left--
	}
	return bodies, nil
}

// getAll returns the properties of one interface of the object at path.
func (b *busConn) getAll(path, iface string) (map[string]any, error) {
	body, err := b.call(path, "org.freedesktop.DBus.Properties", "GetAll", iface)
	if err != nil {
		return nil, err
	}
	return propsFromBody(iface, body)
}

// propsFromBody reads the a{sv} of a GetAll reply.
func propsFromBody(iface string, body []any) (map[string]any, error) {
	if len(body) != 1 {
		return nil, fmt.Errorf("GetAll %s: reply has %d values, want 1", iface, len(body))
	}
	entries, ok := body[0].([]any)
	if !ok {
		return nil, fmt.Errorf("GetAll %s: reply is %T, want a{sv}", iface, body[0])
	}
	props := make(map[string]any, len(entries))
	for _, e := range entries {
		kv, ok := e.([]any)
		if !ok || len(kv) != 2 {
			return nil, fmt.Errorf("GetAll %s: malformed entry", iface)
		}
		k, ok1 := kv[0].(string)
		v, ok2 := kv[1].(variant)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("GetAll %s: entry is not {sv}", iface)
		}
		props[k] = v.value
	}
	return props, nil
}

// get returns one property of one interface of the object at path.
func (b *busConn) get(path, iface, prop string) (any, error) {
	body, err := b.call(path, "org.freedesktop.DBus.Properties", "Get", iface, prop)
	if err != nil {
		return nil, err
	}
	if len(body) != 1 {
		return nil, fmt.Errorf("Get %s.%s: reply has %d values, want 1", iface, prop, len(body))
	}
	v, ok := body[0].(variant)
	if !ok {
		return nil, fmt.Errorf("Get %s.%s: reply is %T, want v", iface, prop, body[0])
	}
	return v.value, nil
}

// variant is a decoded D-Bus variant: its signature and value.
type variant struct {
	sig   string
	value any
}

// encoder writes little-endian D-Bus data; offsets are from the message
// start, which is what alignment is relative to.
type encoder struct{ buf []byte }

func (e *encoder) align(n int) {
	for len(e.buf)%n != 0 {
		e.buf = append(e.buf, 0)
	}
}

func (e *encoder) u32(v uint32) {
	e.align(4)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, v)
}

func (e *encoder) str(s string) {
	e.u32(uint32(len(s)))
	e.buf = append(append(e.buf, s...), 0)
}

func (e *encoder) sig(s string) {
	e.buf = append(append(append(e.buf, byte(len(s))), s...), 0)
}

// field writes one header field, a (yv) struct.
func (e *encoder) field(code byte, sig string, v any) {
	e.align(8)
	e.buf = append(e.buf, code)
	e.sig(sig)
	switch v := v.(type) {
	case string:
		if sig == "g" {
			e.sig(v)
		} else {
			e.str(v)
		}
	case uint32:
		e.u32(v)
	}
}

func encodeCall(serial uint32, path, iface, member string, args []string) []byte {
	var body encoder
	for _, a := range args {
		body.str(a)
	}
	e := encoder{buf: make([]byte, 0, 256+len(body.buf))}
	// Little endian, method call, no flags, protocol version 1.
	e.buf = append(e.buf, 'l', msgMethodCall, 0, 1)
	e.u32(uint32(len(body.buf)))
	e.u32(serial)
	lenAt := len(e.buf)
	e.u32(0) // header fields array length, patched below
	start := len(e.buf)
	e.field(fieldPath, "o", path)
	e.field(fieldInterface, "s", iface)
	e.field(fieldMember, "s", member)
	// Ignored on a peer-to-peer connection, but what systemctl sends.
	e.field(fieldDestination, "s", "org.freedesktop.systemd1")
	if len(args) > 0 {
		e.field(fieldSignature, "g", strings.Repeat("s", len(args)))
	}
	binary.LittleEndian.PutUint32(e.buf[lenAt:], uint32(len(e.buf)-start))
	e.align(8)
	return append(e.buf, body.buf...)
}

// message is a received message, as far as a client needs it.
type message struct {
	typ         byte
	replySerial uint32
	errorName   string
	body        []any
}

// readMessage reads and decodes one message.
func readMessage(r *bufio.Reader) (*message, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, err
	}
	var order binary.ByteOrder
	switch fixed[0] {
	case 'l':
		order = binary.LittleEndian
	case 'B':
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("bad endianness byte %q", fixed[0])
	}
	if fixed[3] != 1 {
		return nil, fmt.Errorf("protocol version %d, want 1", fixed[3])
	}
	bodyLen, fieldsLen := order.Uint32(fixed[4:]), order.Uint32(fixed[12:])
	headerLen := (16 + uint64(fieldsLen) + 7) &^ 7
	total := headerLen + uint64(bodyLen)
	if total > busMaxMessage {
		return nil, fmt.Errorf("message of %d bytes is too large", total)
	}
	buf := make([]byte, total)
	copy(buf, fixed[:])
	if _, err := io.ReadFull(r, buf[16:]); err != nil {
		return nil, err
	}
	m := &message{typ: fixed[1]}
	d := &decoder{buf: buf[:16+fieldsLen], order: order, pos: 12}
	fields, err := d.value("a(yv)", 0)
	if err != nil {
		return nil, fmt.Errorf("header fields: %w", err)
	}
	bodySig := ""
	for _, f := range fields.([]any) {
		st := f.([]any)
		v := st[1].(variant)
		switch st[0].(byte) {
		case fieldReplySerial:
			m.replySerial, _ = v.value.(uint32)
		case fieldErrorName:
			m.errorName, _ = v.value.(string)
		case fieldSignature:
			bodySig, _ = v.value.(string)
		}
	}
	// Only replies are decoded: signals are skipped unread.
	if m.typ != msgMethodReturn && m.typ != msgError {
		return m, nil
	}
	d = &decoder{buf: buf, order: order, pos: int(headerLen)}
	for rest := bodySig; rest != ""; {
		n, err := sigNext(rest)
		if err != nil {
			return nil, fmt.Errorf("body signature %q: %w", bodySig, err)
		}
		v, err := d.value(rest[:n], 0)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		m.body = append(m.body, v)
		rest = rest[n:]
	}
	return m, nil
}

// decoder reads D-Bus data from buf; alignment is relative to buf's start,
// which is the message start.
type decoder struct {
	buf   []byte
	order binary.ByteOrder
	pos   int
}

var errShort = errors.New("message truncated")

func (d *decoder) align(n int) error {
	p := (d.pos + n - 1) &^ (n - 1)
	if p > len(d.buf) {
		return errShort
	}
	d.pos = p
	return nil
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || d.pos+n > len(d.buf) {
		return nil, errShort
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) fixed(align int) ([]byte, error) {
	if err := d.align(align); err != nil {
		return nil, err
	}
	return d.take(align)
}

// maxDepth bounds nesting (the D-Bus limit is 32 arrays and 32 structs).
const maxDepth = 64

// value decodes one complete type. Arrays become []any ([]byte for ay),
// structs and dict entries []any, variants variant.
func (d *decoder) value(sig string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	switch sig[0] {
	case 'y':
		b, err := d.take(1)
		if err != nil {
			return nil, err
		}
		return b[0], nil
	case 'b':
		b, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		return d.order.Uint32(b) != 0, nil
	case 'n', 'q':
		b, err := d.fixed(2)
		if err != nil {
			return nil, err
		}
		if sig[0] == 'n' {
			return int16(d.order.Uint16(b)), nil
		}
		return d.order.Uint16(b), nil
	case 'i', 'u', 'h':
		b, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		if sig[0] == 'i' {
			return int32(d.order.Uint32(b)), nil
		}
		return d.order.Uint32(b), nil
	case 'x', 't', 'd':
		b, err := d.fixed(8)
		if err != nil {
			return nil, err
		}
		switch sig[0] {
		case 'x':
			return int64(d.order.Uint64(b)), nil
		case 'd':
			return math.Float64frombits(d.order.Uint64(b)), nil
		}
		return d.order.Uint64(b), nil
	case 's', 'o':
		b, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		s, err := d.take(int(d.order.Uint32(b)) + 1)
		if err != nil {
			return nil, err
		}
		return string(s[:len(s)-1]), nil
	case 'g':
		n, err := d.take(1)
		if err != nil {
			return nil, err
		}
		s, err := d.take(int(n[0]) + 1)
		if err != nil {
			return nil, err
		}
		return string(s[:len(s)-1]), nil
	case 'v':
		s, err := d.value("g", depth)
		if err != nil {
			return nil, err
		}
		vs := s.(string)
		if n, err := sigNext(vs); err != nil || n != len(vs) {
			return nil, fmt.Errorf("variant signature %q is not one complete type", vs)
		}
		v, err := d.value(vs, depth+1)
		if err != nil {
			return nil, err
		}
		return variant{sig: vs, value: v}, nil
	case 'a':
		b, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		n := int(d.order.Uint32(b))
		elem := sig[1:]
		if err := d.align(sigAlign(elem[0])); err != nil {
			return nil, err
		}
		if n < 0 || d.pos+n > len(d.buf) {
			return nil, errShort
		}
		if elem == "y" {
			return d.take(n)
		}
		end := d.pos + n
		var out []any
		for d.pos < end {
			v, err := d.value(elem, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if d.pos != end {
			return nil, errors.New("array elements overrun its length")
		}
		return out, nil
	case '(', '{':
		if err := d.align(8); err != nil {
			return nil, err
		}
		var out []any
		for rest := sig[1 : len(sig)-1]; rest != ""; {
			n, err := sigNext(rest)
			if err != nil {
				return nil, err
			}
			v, err := d.value(rest[:n], depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			rest = rest[n:]
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %q", sig[0])
}

func sigAlign(c byte) int {
	switch c {
	case 'n', 'q':
		return 2
	case 'b', 'i', 'u', 'h', 's', 'o', 'a':
		return 4
	case 'x', 't', 'd', '(', '{':
		return 8
	}
	return 1
}

// sigNext returns the length of the first complete type in sig.
func sigNext(sig string) (int, error) {
	if sig == "" {
		return 0, errors.New("empty signature")
	}
	switch sig[0] {
	case 'y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 'h', 's', 'o', 'g', 'v':
		return 1, nil
	case 'a':
		n, err := sigNext(sig[1:])
		return n + 1, err
	case '(', '{':
		closer := byte(')')
		if sig[0] == '{' {
			closer = '}'
		}
		i := 1
		for i < len(sig) && sig[i] != closer {
			n, err := sigNext(sig[i:])
			if err != nil {
				return 0, err
			}
			i += n
		}
		if i >= len(sig) || i == 1 {
			return 0, fmt.Errorf("unterminated or empty container in %q", sig)
		}
		return i + 1, nil
	}
	return 0, fmt.Errorf("unknown type code %q", sig[0])
}

// unitPath is the object path of a unit, as systemd's bus_label_escape
// makes it: ASCII letters and digits kept, every other byte as _xx.
// Getting properties on it loads the unit if needed, as systemctl show does.
func unitPath(unit string) string {
	var b strings.Builder
	b.WriteString("/org/freedesktop/systemd1/unit/")
	if unit == "" {
		b.WriteByte('_')
	}
	for i := 0; i < len(unit); i++ {
		c := unit[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}
