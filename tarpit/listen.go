package tarpit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// socketBuffer is what SO_SNDBUF and SO_RCVBUF are set to on tarpit
// sockets; the kernel rounds it up to its minimum (about 4.5 KiB to send,
// 2.3 KiB to receive). A trapped client needs a few dozen bytes a turn and
// nothing it sends is wanted.
const socketBuffer = 1

// smallBuffers shrinks a socket's buffers. On a listening socket it is
// inherited by every accepted one, and set before listen() the small receive
// window is what the handshake advertises.
func smallBuffers(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
}

func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = smallBuffers(int(fd)) }); err != nil {
				return err
			}
			return serr
		},
	}
}

// listenTCP listens on addr (IPv4, IPv6 or both) with small socket buffers.
func listenTCP(addr string) (net.Listener, error) {
	return listenConfig().Listen(context.Background(), "tcp", addr)
}

// rawListener is a listening socket whose connections are taken with
// accept4 as raw non-blocking descriptors: Go's poller wakes the accept
// loop, but accepted sockets are never registered with it, so a trapped
// client costs no netFD, no poll descriptor and no goroutine.
//
// A net.TCPListener's RawConn cannot wait for readability (only Control is
// supported), so the socket made by net.Listen (which parses the address and
// sets up dual-stack) is duplicated into an *os.File: a non-blocking
// descriptor given to os.NewFile is registered with the poller, and its
// RawConn.Read waits for the next connection.
type rawListener struct {
	f    *os.File
	rc   syscall.RawConn
	addr net.Addr
	port uint16

	// acceptHook, when set (by tests, before the accept loop starts), is
	// called after each accepted connection, on the accept loop.
	acceptHook func()
}

func listenRaw(addr string) (*rawListener, error) {
	l, err := listenTCP(addr)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	lrc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := lrc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "tarpit-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &rawListener{f: f, rc: rc, addr: l.Addr(), port: uint16(l.Addr().(*net.TCPAddr).Port)}, nil
}

// Accept back-off after errors like EMFILE: doubling from min to max, so a
// process out of descriptors neither spins nor stops accepting for long.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// acceptLoop takes connections from l until it is closed or ctx is done.
//
// The callback accepts until the backlog is empty, and closing the
// listener's *os.File waits for it to return: under a flood the backlog
// never empties, so it also ends as soon as ctx is done (one check per
// accept), or shutting down would wait for the flood, accepting and
// refusing every connection of it.
func (t *Tarpit) acceptLoop(ctx context.Context, l *rawListener) {
	var backoff time.Duration
	done := ctx.Done()
	for {
		var acceptErr error
		stopped := false
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				select {
				case <-done:
					stopped = true
					return true
				default:
				}
				nfd, sa, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
				switch {
				case err == nil:
					backoff = 0
					t.acceptedSSH(l, nfd, sa)
					if l.acceptHook != nil {
						l.acceptHook()
					}
				case err == unix.EAGAIN:
					return false // wait for the poller
				case err == unix.EINTR || err == unix.ECONNABORTED:
				default:
					acceptErr = err
					return true
				}
			}
		})
		if err != nil || stopped { // listener closed, or stopping
			return
		}
		if acceptErr == nil {
			continue
		}
		t.reject(RejectAcceptError)
		backoff = nextAcceptBackoff(backoff)
		if backoff == acceptBackoffMax || errors.Is(acceptErr, unix.EMFILE) || errors.Is(acceptErr, unix.ENFILE) {
			t.logger.Warn("tarpit accept failed; backing off", "err", acceptErr, "backoff", backoff)
		}
		if !t.acceptPause(ctx, backoff) {
			return
		}
	}
}

// nextAcceptBackoff is the pause after a failed accept that followed a
// pause of prev (0 after a successful accept).
func nextAcceptBackoff(prev time.Duration) time.Duration {
	return min(max(acceptBackoffMin, 2*prev), acceptBackoffMax)
}

// acceptPause waits d after a failed accept; false when ctx ended first.
// Tests replace it (pauseHook) to see the back-off without timing it.
func (t *Tarpit) acceptPause(ctx context.Context, d time.Duration) bool {
	if t.pauseHook != nil {
		return t.pauseHook(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// acceptedSSH admits or refuses one accepted SSH-tarpit socket.
func (t *Tarpit) acceptedSSH(l *rawListener, fd int, sa unix.Sockaddr) {
	remote := sockaddrToAddrPort(sa)
	// Only a trusted balancer's header is awaited; anyone else is taken by
	// its own address (and a header it sends is counted, not believed).
	proxy := t.cfg.ProxyProtocol && t.trustedProxy(remote.Addr())
	if ok, _ := t.admit(remote.Addr(), !proxy); !ok {
		unix.Close(fd)
		return
	}
	c := client{
		fd:        int32(fd),
		proto:     protoSSH,
		localPort: l.port,
		remote:    remote,
		startUS:   t.micros(),
	}
	if proxy {
		c.phase = phaseProxy
	}
	c.forged = t.cfg.ProxyProtocol && !proxy
	if !t.enqueue(c) {
		unix.Close(fd)
		t.unadmit(remote.Addr(), !proxy)
	}
}

// unadmit gives back the slots admit took, for a client that never reached
// the scheduler because the tarpit is stopping.
func (t *Tarpit) unadmit(src netip.Addr, countSource bool) {
	src = sourceKey(src)
	t.mu.Lock()
	t.active--
	if countSource {
		if n := t.perSrc[src]; n <= 1 {
			delete(t.perSrc, src)
		} else {
			t.perSrc[src] = n - 1
		}
	}
	t.rejected[RejectShutdown]++
	t.mu.Unlock()
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
