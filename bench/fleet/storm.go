package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// storm takes a region's POPs down through the simulator's control API and
// reads the pages that reach the fake ntfy (the "ntfy {json}" lines
// fakenotify prints): time from the outage to the first page, and how many
// pages in the watch window; then brings the POPs back and counts the
// resolution pages.
func storm(args []string) error {
	fs := flag.NewFlagSet("storm", flag.ExitOnError)
	control := fs.String("control", "http://127.0.0.1:9799", "simulator control API")
	region := fs.String("region", "eu-west", "region whose POPs go down")
	count := fs.Int("count", 200, "POPs that go down (0 = the whole region)")
	ntfyLog := fs.String("ntfy-log", "", "stdout of fakenotify")
	watch := fs.Duration("watch", 6*time.Minute, "how long to count pages after the outage")
	resolve := fs.Duration("resolve-watch", 3*time.Minute, "how long to count pages after the POPs are back (0 = leave them down)")
	out := fs.String("out", "", "write the result as JSON here")
	fs.Parse(args)
	if *ntfyLog == "" {
		return fmt.Errorf("-ntfy-log is required")
	}
	f, err := os.Open(*ntfyLog)
	if err != nil {
		return err
	}
	defer f.Close()
	// Pages from before the outage are not the storm's.
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	rd := bufio.NewReader(f)

	var res stormResult
	res.Region, res.Count = *region, *count
	t0, err := post(*control + fmt.Sprintf("/down?region=%s&count=%d", *region, *count))
	if err != nil {
		return err
	}
	res.Outage = t0
	res.Firing = collectPages(rd, t0, *watch)
	if len(res.Firing) > 0 {
		res.FirstPageSeconds = res.Firing[0].At.Sub(t0).Seconds()
	}
	if *resolve > 0 {
		t1, err := post(*control + "/up")
		if err != nil {
			return err
		}
		res.Back = t1
		res.Resolved = collectPages(rd, t1, *resolve)
	}
	fmt.Printf("storm: %d POPs of %s down at %s\n", *count, *region, t0.Format(time.RFC3339))
	fmt.Printf("storm: %d ntfy messages within %s, first after %.1f s\n", len(res.Firing), *watch, res.FirstPageSeconds)
	for _, p := range res.Firing {
		fmt.Printf("  +%6.1fs  %s (%d bytes)\n", p.At.Sub(t0).Seconds(), p.Title, p.Bytes)
	}
	if *resolve > 0 {
		fmt.Printf("storm: %d ntfy messages within %s after the POPs came back\n", len(res.Resolved), *resolve)
		for _, p := range res.Resolved {
			fmt.Printf("  +%6.1fs  %s (%d bytes)\n", p.At.Sub(res.Back).Seconds(), p.Title, p.Bytes)
		}
	}
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(*out, b, 0o644)
	}
	return nil
}

type stormResult struct {
	Region           string    `json:"region"`
	Count            int       `json:"count"`
	Outage           time.Time `json:"outage"`
	FirstPageSeconds float64   `json:"first_page_seconds"`
	Firing           []page    `json:"firing_pages"`
	Back             time.Time `json:"back,omitempty"`
	Resolved         []page    `json:"resolved_pages,omitempty"`
}

type page struct {
	At    time.Time `json:"at"`
	Title string    `json:"title"`
	Bytes int       `json:"bytes"`
}

func post(u string) (time.Time, error) {
	resp, err := http.Post(u, "", nil)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	var r struct {
		At time.Time `json:"at"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("%s: %s: %s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return time.Time{}, err
	}
	return r.At, nil
}

// collectPages reads ntfy lines for d after t0.
func collectPages(rd *bufio.Reader, t0 time.Time, d time.Duration) []page {
	var pages []page
	var partial []byte
	for time.Since(t0) < d {
		line, err := rd.ReadBytes('\n')
		partial = append(partial, line...)
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		l := partial
		partial = nil
		rest, ok := bytes.CutPrefix(l, []byte("ntfy "))
		if !ok {
			continue
		}
		var m struct {
			Time    time.Time `json:"time"`
			Title   string    `json:"title"`
			Message string    `json:"message"`
		}
		if json.Unmarshal(rest, &m) != nil {
			continue
		}
		pages = append(pages, page{At: m.Time, Title: strings.TrimSpace(m.Title), Bytes: len(m.Message)})
	}
	return pages
}
