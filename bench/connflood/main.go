// Command connflood plays the attacker of issue 13 §3 against a web
// listener, and measures a scraper beside it.
//
//	connflood flood -addr 127.0.0.1:9745 -n 10000 -src 127.0.1.1,127.0.1.2 [-tls] [-request] [-reconnect 100ms]
//
// opens n connections from the given loopback source addresses and holds
// them: without -request they send nothing (half-open: pre-request HTTP, or
// a TLS handshake never started); with -request each sends one plain
// HTTP/1.1 request for /-/healthy and then idles on keep-alive; with -tls
// each completes a TLS handshake first (about 32 kB each on the server). With
// -reconnect, a connection the server closes is opened again after the
// delay, so the flood keeps its size. It prints "ready <n>" once n
// connections were opened, then "open <k>" every second, and runs until
// killed.
//
//	connflood scrape -url https://127.0.0.1:9745/metrics [-user u -password p -insecure] [-count 200] [-interval 100ms]
//
// scrapes url count times (one keep-alive client, as Prometheus does) and
// prints the latency p50, p99, max and the number of failed scrapes.
//
//	connflood webconfig -dir D -user prometheus -password secret
//
// writes a self-signed certificate for 127.0.0.1 and an exporter-toolkit
// web config with that user (bcrypt) to D/web.yml, for a benchmark.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: connflood flood|scrape|webconfig [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "flood":
		flood(os.Args[2:])
	case "scrape":
		scrape(os.Args[2:])
	case "webconfig":
		webconfig(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: connflood flood|scrape|webconfig [flags]")
		os.Exit(2)
	}
}

func flood(args []string) {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9745", "target host:port")
	n := fs.Int("n", 1000, "connections to hold")
	srcs := fs.String("src", "127.0.0.1", "comma-separated loopback source addresses")
	request := fs.Bool("request", false, "send one HTTP/1.1 request for /-/healthy, then idle on keep-alive")
	useTLS := fs.Bool("tls", false, "complete a TLS handshake first (certificate not verified)")
	reconnect := fs.Duration("reconnect", 0, "reopen a connection the server closed after this delay (0 = do not)")
	fs.Parse(args)

	var sources []*net.TCPAddr
	for _, s := range strings.Split(*srcs, ",") {
		sources = append(sources, &net.TCPAddr{IP: net.ParseIP(strings.TrimSpace(s))})
	}
	var open, opened atomic.Int64
	var ready sync.WaitGroup
	ready.Add(*n)
	for i := 0; i < *n; i++ {
		d := net.Dialer{LocalAddr: sources[i%len(sources)], Timeout: 10 * time.Second}
		go func() {
			first := true
			for failures := 0; ; {
				c, err := d.Dial("tcp", *addr)
				if err != nil {
					// Out of ports or a full backlog: try again shortly,
					// and give up on this one after a while.
					if failures++; failures == 50 {
						if first {
							ready.Done()
						}
						return
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				// A connection counts once the TCP handshake is done: what
				// the server then does with it (a TLS handshake, or closing
				// it at once) is what is measured.
				failures = 0
				open.Add(1)
				if first {
					first = false
					opened.Add(1)
					ready.Done()
				}
				if *useTLS {
					tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
					tc.SetDeadline(time.Now().Add(30 * time.Second))
					if err := tc.Handshake(); err == nil {
						tc.SetDeadline(time.Time{})
						c = tc
					}
				}
				if *request {
					io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: pop\r\n\r\n")
				}
				// Hold it until the server closes it (an answer is read and
				// ignored).
				io.Copy(io.Discard, c)
				c.Close()
				open.Add(-1)
				if *reconnect <= 0 {
					return
				}
				time.Sleep(*reconnect)
			}
		}()
		if i%500 == 499 {
			time.Sleep(time.Millisecond) // let the server's accept loop breathe
		}
	}
	go func() {
		ready.Wait()
		fmt.Printf("ready %d\n", opened.Load())
	}()
	for range time.Tick(time.Second) {
		fmt.Printf("open %d\n", open.Load())
	}
}

func scrape(args []string) {
	fs := flag.NewFlagSet("scrape", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:9745/metrics", "what to scrape")
	user := fs.String("user", "", "basic auth user")
	password := fs.String("password", "", "basic auth password")
	insecure := fs.Bool("insecure", false, "do not verify the server's certificate")
	count := fs.Int("count", 200, "scrapes")
	interval := fs.Duration("interval", 100*time.Millisecond, "time between scrapes")
	timeout := fs.Duration("timeout", 10*time.Second, "scrape timeout")
	verbose := fs.Bool("v", false, "print every scrape")
	fs.Parse(args)

	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure},
	}}
	var lat []time.Duration
	failed, newConns := 0, 0
	for i := 0; i < *count; i++ {
		req, _ := http.NewRequest(http.MethodGet, *url, nil)
		if *user != "" {
			req.SetBasicAuth(*user, *password)
		}
		reused := false
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		start := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, bufio.NewReader(resp.Body))
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		if err != nil {
			failed++
			fmt.Fprintln(os.Stderr, "scrape failed:", err)
		} else {
			lat = append(lat, time.Since(start))
			if !reused {
				newConns++
			}
			if *verbose {
				fmt.Printf("scrape %d: %.2f ms reused=%v\n", i, ms(time.Since(start)), reused)
			}
		}
		time.Sleep(*interval)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("scrapes=%d failed=%d new_connections=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", *count, failed, newConns,
		ms(q(0.50)), ms(q(0.99)), ms(q(1)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func webconfig(args []string) {
	fs := flag.NewFlagSet("webconfig", flag.ExitOnError)
	dir := fs.String("dir", ".", "where to write tls.crt, tls.key and web.yml")
	user := fs.String("user", "prometheus", "basic auth user")
	password := fs.String("password", "secret", "basic auth password")
	fs.Parse(args)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "connflood"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	check(err)
	check(os.WriteFile(filepath.Join(*dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	check(os.WriteFile(filepath.Join(*dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	hash, err := bcrypt.GenerateFromPassword([]byte(*password), bcrypt.DefaultCost)
	check(err)
	config := "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  " + *user + ": " + string(hash) + "\n"
	check(os.WriteFile(filepath.Join(*dir, "web.yml"), []byte(config), 0o600))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
