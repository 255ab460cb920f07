// Command alertbridgeload measures alertbridge's webhook intake: it posts
// Alertmanager webhook payloads of N distinct alerts (every alert new, so
// every one is a durable spool write) from C concurrent senders for a fixed
// time and reports accepted alerts per second and the p50/p99/max time to
// the 2xx. Loopback only; the number of requests is bounded.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

func main() {
	target := flag.String("url", "http://127.0.0.1:9746/webhook", "webhook URL (loopback only)")
	perPayload := flag.Int("alerts", 1, "alerts per payload")
	concurrency := flag.Int("concurrency", 16, "concurrent senders")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	maxRequests := flag.Int("max-requests", 200000, "upper bound on requests")
	label := flag.String("label", "", "label for the result line")
	token := flag.String("token", "", "bearer token to send (alertbridge --webhook.token-file)")
	floor := flag.String("serve-floor", "", "instead of sending, serve the plain HTTP floor on this loopback address: read the body, decode the JSON, answer 200 (no spool, no fsync)")
	flag.Parse()
	if *floor != "" {
		serveFloor(*floor)
		return
	}

	u, err := url.Parse(*target)
	if err != nil {
		fail(err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fail(fmt.Errorf("refusing non-loopback target %s", *target))
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency}}
	start := time.Now()
	var seq, sent, errs atomic.Int64
	lat := make([][]time.Duration, *concurrency)
	var wg sync.WaitGroup
	run := fmt.Sprintf("%d", start.UnixNano())
	for w := 0; w < *concurrency; w++ {
		wg.Go(func() {
			for time.Since(start) < *duration {
				n := seq.Add(1)
				if n > int64(*maxRequests) {
					return
				}
				body := payload(run, n, *perPayload)
				t := time.Now()
				req, _ := http.NewRequest(http.MethodPost, *target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if *token != "" {
					req.Header.Set("Authorization", "Bearer "+*token)
				}
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	alerts := float64(sent.Load()) * float64(*perPayload)
	fmt.Printf("%-28s alerts/payload=%-3d conc=%-3d requests=%-7d errors=%-4d alerts/s=%-8.0f p50=%-8s p99=%-8s max=%s\n",
		*label, *perPayload, *concurrency, sent.Load(), errs.Load(), alerts/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	if errs.Load() > 0 || sent.Load() == 0 {
		os.Exit(1)
	}
}

func payload(run string, n int64, k int) []byte {
	now := time.Now().UTC()
	as := make([]alert, k)
	for i := range as {
		pop := fmt.Sprintf("pop%d-%d", n, i)
		as[i] = alert{
			Status:       "firing",
			Labels:       map[string]string{"alertname": "PopDown", "pop": pop, "severity": "critical"},
			Annotations:  map[string]string{"summary": "POP " + pop + " does not answer", "runbook_url": "https://runbooks.example/PopDown"},
			StartsAt:     now,
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=up",
			Fingerprint:  fmt.Sprintf("%s-%d-%d", run, n, i),
		}
	}
	// Every payload is a group of its own (group_by [alertname, region]
	// with a region per payload), as in a storm over many regions.
	region := fmt.Sprintf("r%s-%d", run, n)
	b, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": "{}:{alertname=\"PopDown\", region=\"" + region + "\"}", "truncatedAlerts": 0, "status": "firing",
		"receiver": "alertbridge", "groupLabels": map[string]string{"alertname": "PopDown", "region": region},
		"commonLabels": map[string]string{"alertname": "PopDown"}, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager.example:9093", "alerts": as,
	})
	return b
}

// serveFloor is the plain HTTP floor: the same requests answered by a Go
// HTTP server that reads and decodes them and keeps nothing.
func serveFloor(addr string) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fail(fmt.Errorf("refusing non-loopback floor address %s", addr))
	}
	http.HandleFunc("/webhook", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Alerts []alert `json:"alerts"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 32<<20)).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "ok: %d\n", len(p.Alerts))
	})
	http.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "Ready") })
	fail(http.ListenAndServe(addr, nil))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "alertbridgeload:", err)
	os.Exit(2)
}
