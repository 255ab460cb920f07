package tarpit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// The PROXY protocol (v1 text, v2 binary) as sent by HAProxy, nginx and
// cloud load balancers: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
//
// The SSH tarpit parses it itself rather than with go-proxyproto, because
// that library reads the header through a blocking read on a goroutine per
// connection. Here the scheduler peeks at the socket without blocking and
// consumes exactly the header.

var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")

	// errNeedMore: b is a valid start of a header; wait for more bytes.
	errNeedMore = errors.New("proxy header incomplete")
)

// proxyV1Max is the longest v1 header, CRLF included.
const proxyV1Max = 107

// parseProxyHeader parses the PROXY header at the start of b. It returns the
// header's length and the original source address; src is invalid when the
// header carries none (v1 UNKNOWN, v2 LOCAL or a non-TCP family), in which
// case the connection's own peer address stands. errNeedMore means b is a
// prefix of a header.
func parseProxyHeader(b []byte) (n int, src netip.AddrPort, err error) {
	switch {
	case len(b) == 0:
		return 0, src, errNeedMore
	case bytes.HasPrefix(b, proxyV2Sig):
		return parseProxyV2(b)
	case bytes.HasPrefix(b, proxyV1Prefix):
		return parseProxyV1(b)
	case len(b) < len(proxyV2Sig) && bytes.HasPrefix(proxyV2Sig, b):
		return 0, src, errNeedMore
	case len(b) < len(proxyV1Prefix) && bytes.HasPrefix(proxyV1Prefix, b):
		return 0, src, errNeedMore
	}
	return 0, src, errors.New("no PROXY protocol header")
}

func parseProxyV1(b []byte) (int, netip.AddrPort, error) {
	var none netip.AddrPort
	end := bytes.Index(b[:min(len(b), proxyV1Max)], []byte("\r\n"))
	if end < 0 {
		if len(b) < proxyV1Max {
			return 0, none, errNeedMore
		}
		return 0, none, errors.New("PROXY v1 header longer than 107 bytes")
	}
	n := end + 2
	fields := bytes.Split(b[len(proxyV1Prefix):end], []byte(" "))
	switch string(fields[0]) {
	case "UNKNOWN":
		return n, none, nil
	case "TCP4", "TCP6":
	default:
		return 0, none, fmt.Errorf("PROXY v1: unknown protocol %q", fields[0])
	}
	if len(fields) != 5 {
		return 0, none, fmt.Errorf("PROXY v1: want 5 fields, got %d", len(fields))
	}
	ip, err := netip.ParseAddr(string(fields[1]))
	if err != nil {
		return 0, none, fmt.Errorf("PROXY v1: source address: %w", err)
	}
	dst, err := netip.ParseAddr(string(fields[2]))
	if err != nil {
		return 0, none, fmt.Errorf("PROXY v1: destination address: %w", err)
	}
	want4 := string(fields[0]) == "TCP4"
	if ip.Is4() != want4 || dst.Is4() != want4 || ip.Zone() != "" || dst.Zone() != "" {
		return 0, none, fmt.Errorf("PROXY v1: addresses do not match %s", fields[0])
	}
	sport, err := parsePort(fields[3])
	if err != nil {
		return 0, none, fmt.Errorf("PROXY v1: source port: %w", err)
	}
	if _, err := parsePort(fields[4]); err != nil {
		return 0, none, fmt.Errorf("PROXY v1: destination port: %w", err)
	}
	return n, netip.AddrPortFrom(ip, sport), nil
}

func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, fmt.Errorf("invalid port %q", b)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid port %q", b)
		}
	}
	p, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid port %q", b)
	}
	return uint16(p), nil
}

func parseProxyV2(b []byte) (int, netip.AddrPort, error) {
	var none netip.AddrPort
	if len(b) < 16 {
		return 0, none, errNeedMore
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return 0, none, fmt.Errorf("PROXY v2: version %d", verCmd>>4)
	}
	cmd := verCmd & 0xf
	if cmd > 1 {
		return 0, none, fmt.Errorf("PROXY v2: unknown command %d", cmd)
	}
	n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if n > maxProxyHeader {
		return 0, none, fmt.Errorf("PROXY v2: header of %d bytes exceeds %d", n, maxProxyHeader)
	}
	if len(b) < n {
		return 0, none, errNeedMore
	}
	if cmd == 0 { // LOCAL: the proxy's own health check; the peer stands
		return n, none, nil
	}
	body := b[16:n]
	switch fam {
	case 0x11: // TCP over IPv4
		if len(body) < 12 {
			return 0, none, errors.New("PROXY v2: short IPv4 address block")
		}
		return n, netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10])), nil
	case 0x21: // TCP over IPv6
		if len(body) < 36 {
			return 0, none, errors.New("PROXY v2: short IPv6 address block")
		}
		return n, netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34])), nil
	case 0x00, 0x12, 0x22, 0x31, 0x32: // UNSPEC, UDP, UNIX: no TCP source to take
		return n, none, nil
	}
	return 0, none, fmt.Errorf("PROXY v2: unknown address family 0x%02x", fam)
}
