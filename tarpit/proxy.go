package tarpit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pires/go-proxyproto"
)

// The PROXY protocol (v1 text, v2 binary) as sent by HAProxy, nginx and
// cloud load balancers: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
//
// The header is parsed by go-proxyproto. What this file adds is framing: the
// SSH tarpit's scheduler peeks at a socket without blocking (no goroutine per
// connection, see sched.go), so it must know whether the bytes it has seen
// are a whole header, a header still arriving, or no header at all.
// proxyproto.Read cannot say: on a finite reader a truncated v1 line and a
// malformed one both give ErrCantReadVersion1Header, and on the socket itself
// it would block a goroutine until the bytes come. So the frame's length is
// found here (the CRLF of v1, the length field of v2) and only a complete
// frame is handed to the library.

var errNeedMore = errors.New("proxy header incomplete") // b is a valid start of a header; wait for more bytes

// proxyV1Max is the longest v1 header, CRLF included (the spec's bound, and
// the library's).
const proxyV1Max = 107

// proxyV2Fixed is the fixed part of a v2 header: signature, version and
// command, family, length.
const proxyV2Fixed = 16

// parseProxyHeader parses the PROXY header at the start of b. It returns the
// header's length and the original source address; src is invalid when the
// header carries none (v1 UNKNOWN, v2 LOCAL or a non-TCP family), in which
// case the connection's own peer address stands. errNeedMore means b is a
// prefix of a header.
func parseProxyHeader(b []byte) (n int, src netip.AddrPort, err error) {
	var none netip.AddrPort
	n, err = proxyFrame(b)
	if err != nil {
		return 0, none, err
	}
	br := bufio.NewReaderSize(bytes.NewReader(b[:n]), n)
	h, err := proxyproto.Read(br)
	if err != nil {
		return 0, none, err
	}
	if br.Buffered() != 0 { // the library and the framing disagree on the length
		return 0, none, fmt.Errorf("PROXY header: %d bytes left inside the frame", br.Buffered())
	}
	if h.Command.IsLocal() { // the proxy's own health check, or v1 UNKNOWN
		return n, none, nil
	}
	s, _, ok := h.TCPAddrs()
	if !ok { // UDP or UNIX: no TCP source to take
		return n, none, nil
	}
	ap := s.AddrPort()
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// proxyFrame returns the length of the PROXY header frame at the start of b,
// errNeedMore while b is a proper prefix of one, or an error when b cannot
// start one.
func proxyFrame(b []byte) (int, error) {
	switch {
	case bytes.HasPrefix(b, proxyproto.SIGV2):
		if len(b) < proxyV2Fixed {
			return 0, errNeedMore
		}
		n := proxyV2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
		if n > maxProxyHeader {
			return 0, fmt.Errorf("PROXY v2: header of %d bytes exceeds %d", n, maxProxyHeader)
		}
		if len(b) < n {
			return 0, errNeedMore
		}
		return n, nil
	case bytes.HasPrefix(b, proxyproto.SIGV1):
		if i := bytes.IndexByte(b[:min(len(b), proxyV1Max)], '\n'); i >= 0 {
			return i + 1, nil
		}
		if len(b) < proxyV1Max {
			return 0, errNeedMore
		}
		return 0, fmt.Errorf("PROXY v1 header longer than %d bytes", proxyV1Max)
	case bytes.HasPrefix(proxyproto.SIGV2, b), bytes.HasPrefix(proxyproto.SIGV1, b): // includes len(b) == 0
		return 0, errNeedMore
	}
	return 0, errors.New("no PROXY protocol header")
}

// hasProxySignature reports whether b starts like a PROXY header (v1 or v2),
// for counting the headers sent by sources that are not trusted.
func hasProxySignature(b []byte) bool {
	return bytes.HasPrefix(b, proxyproto.SIGV2) || bytes.HasPrefix(b, []byte("PROXY "))
}

// trustedProxy reports whether a connection from peer may carry a PROXY
// header that is believed.
func (t *Tarpit) trustedProxy(peer netip.Addr) bool {
	peer = peer.Unmap()
	for _, p := range t.trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}
