// Command tarpitload holds many connections open against an SSH tarpit, for
// bench/tarpit.sh. It opens them as raw non-blocking sockets (no goroutine,
// no netpoller registration each), spread over several 127.0.0.x source
// addresses, never reads what the tarpit sends, reports how many are held,
// and keeps them until it is signalled or -hold passes. Loopback only.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2222", "tarpit address (loopback only)")
	n := flag.Int("n", 9000, "connections to hold")
	sources := flag.Int("sources", 90, "source addresses to spread them over, from 127.0.0.2 up")
	batch := flag.Int("batch", 250, "connections opened per batch")
	pause := flag.Duration("pause", 20*time.Millisecond, "pause between batches (the listen backlog is finite)")
	settle := flag.Duration("settle", 2500*time.Millisecond, "wait after the last connect before counting")
	hold := flag.Duration("hold", 2*time.Minute, "give up holding after this long")
	freePort := flag.Bool("free-port", false, "print a free loopback TCP port and exit")
	flag.Parse()
	if *freePort {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		return
	}
	dst, err := netip.ParseAddrPort(*addr)
	if err != nil || !dst.Addr().Is4() || !dst.Addr().IsLoopback() {
		fail(fmt.Errorf("-addr must be an IPv4 loopback address:port, got %q", *addr))
	}
	if *sources < 1 || *sources > 250 {
		fail(fmt.Errorf("-sources must be 1..250"))
	}
	to := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}

	start := time.Now()
	fds := make([]int, 0, *n)
	for i := 0; i < *n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fail(fmt.Errorf("socket %d: %w (raise ulimit -n)", i, err))
		}
		src := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(2 + i%*sources)}}
		if err := unix.Bind(fd, src); err != nil {
			fail(fmt.Errorf("bind %d: %w", i, err))
		}
		if err := unix.Connect(fd, to); err != nil && err != unix.EINPROGRESS {
			fail(fmt.Errorf("connect %d: %w", i, err))
		}
		fds = append(fds, fd)
		if (i+1)%*batch == 0 {
			time.Sleep(*pause)
		}
	}
	time.Sleep(*settle)

	// held: connected and still open; lines: of those, how many have been
	// sent something already; closed: refused or dropped by the tarpit.
	var held, lines, closed, pending int
	var b [1]byte
	for _, fd := range fds {
		if soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
			closed++
			continue
		}
		m, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN:
			held++
		case err == unix.ENOTCONN:
			pending++
		case err != nil || m == 0:
			closed++
		default:
			held++
			lines++
		}
	}
	fmt.Printf("ready held=%d with_lines=%d closed=%d pending=%d connect_seconds=%.1f\n",
		held, lines, closed, pending, time.Since(start).Seconds())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-sig:
	case <-time.After(*hold):
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tarpitload:", err)
	os.Exit(1)
}
