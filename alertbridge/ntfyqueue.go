package alertbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The ntfy queue is drained by one dispatcher goroutine that owns all
// delivery state and up to Concurrency sender goroutines. Pages of one group
// go out one at a time and in order; pages of different groups do not wait
// for each other, so a page that is slow, backing off or refused holds back
// only the later pages of its own group. The storm guard (a token bucket
// per topic) bounds the messages a minute; what is ready beyond the budget
// goes out as one digest when the next token comes.

// dispatchWindow bounds the pages held in memory; the rest wait in the spool.
const dispatchWindow = 4096

type pageItem struct {
	seq  uint64
	page Page
	bad  bool // undecodable record
	// marked: the spool records that a publish of this page started
	// (bucketNtfyAttempted); restarted: it did so before this process
	// started, so ntfy may have published it already.
	marked, restarted bool
}

type groupQueue struct {
	id       string
	items    []*pageItem
	inflight bool
	next     time.Time // earliest next attempt
	attempt  int       // failed attempts of the head
	// repeat: an attempt's outcome was unknown (ntfy may have published
	// it), so the next send of the head is marked as a possible repeat and
	// waits long for the answer.
	repeat    bool
	shortened bool // the head was refused as too large once and cut
}

// stormGuard is a token bucket: perMinute tokens a minute, burst perMinute.
// storm is set once the bucket ran dry and cleared when it is full again.
type stormGuard struct {
	perMinute int
	window    time.Duration // a minute; shorter in tests
	tokens    float64
	last      time.Time
	storm     bool
}

func (s *stormGuard) refill(now time.Time) {
	s.tokens += float64(now.Sub(s.last)) / float64(s.window) * float64(s.perMinute)
	s.last = now
	if s.tokens > float64(s.perMinute) {
		s.tokens = float64(s.perMinute)
	}
}

// take spends a token if there is one. A take that finds the bucket empty
// starts a storm: the pages had to wait, and what waited goes out merged
// when the next token comes.
func (s *stormGuard) take(now time.Time) bool {
	s.refill(now)
	if s.tokens < 1 {
		s.storm = true
		return false
	}
	s.tokens--
	return true
}

func (s *stormGuard) nextToken(now time.Time) time.Duration {
	s.refill(now)
	if s.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - s.tokens) / float64(s.perMinute) * float64(s.window))
}

type sendResult struct {
	groups []*groupQueue
	items  []*pageItem // what the message carried (one page, or a digest's)
	digest bool
	repeat bool
	// restarted: the repeat is of an attempt made before a restart.
	restarted bool
	// mark: items whose attempt the sender records before publishing;
	// marked says it did.
	mark   []*pageItem
	marked bool
	err    error
}

type dispatcher struct {
	b        *Bridge
	groups   map[string]*groupQueue
	loaded   int
	lastSeq  uint64
	inflight int
	guard    stormGuard
	pause    time.Time // ntfy refused our token or said 429: nothing goes before this
	n429     int       // consecutive 429 answers
	// failStreak counts retryable failures since the last publish that
	// went through.
	failStreak int
	// noDigest: ntfy refused a digest; pages are no longer merged.
	noDigest  bool
	results   chan sendResult
	wg        sync.WaitGroup
	authState string

	busy        atomic.Int64 // pages loaded or in flight (mirrors loaded)
	pendingDone atomic.Int64 // settled, not yet removed from the spool
	doneMu      sync.Mutex
	done        []settled
	doneWake    chan struct{}
}

func (b *Bridge) ntfyDispatcher(ctx context.Context) {
	cfg := b.cfg.Ntfy
	d := &dispatcher{b: b, groups: map[string]*groupQueue{},
		guard:   stormGuard{perMinute: cfg.PerMinute, window: cfg.StormWindow, tokens: float64(cfg.PerMinute), last: time.Now()},
		results: make(chan sendResult, cfg.Concurrency), doneWake: make(chan struct{}, 1)}
	b.idleMu.Lock()
	b.ntfyIdle = func() bool { return d.busy.Load() == 0 && d.pendingDone.Load() == 0 }
	b.idleMu.Unlock()
	defer d.wg.Wait()
	d.wg.Go(func() { d.settler(ctx) })
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := d.load(); err != nil {
			b.log.Error("spool read failed", "target", TargetNtfy, "err", err)
		}
		now := time.Now()
		d.dispatch(ctx, now)
		wait := d.nextWake(now)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-b.wake[TargetNtfy]:
		case r := <-d.results:
			d.handle(ctx, r)
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		d.busy.Store(int64(d.loaded))
	}
}

func boolGauge(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// load reads the pages appended since the last load, up to the window.
func (d *dispatcher) load() error {
	if d.loaded >= dispatchWindow {
		return nil
	}
	raw, err := d.b.spool.peekRaw(TargetNtfy, d.lastSeq, dispatchWindow-d.loaded)
	if err != nil {
		return err
	}
	seqs := make([]uint64, len(raw))
	for i, r := range raw {
		seqs[i] = r.Seq
	}
	tried, err := d.b.spool.attempted(seqs)
	if err != nil {
		return err
	}
	for _, r := range raw {
		d.lastSeq = r.Seq
		it := &pageItem{seq: r.Seq, marked: tried[r.Seq], restarted: tried[r.Seq]}
		if json.Unmarshal(r.Val, &it.page) != nil || it.page.Title == "" {
			// A spool written by a version that queued one record per
			// alert: page it as a group of one.
			var rec Record
			if json.Unmarshal(r.Val, &rec) == nil && rec.Key != "" && len(rec.Labels) > 0 {
				it.page = d.b.legacyPage(&rec)
			} else {
				it.bad = true
			}
		}
		g := d.groups[it.page.Group]
		if g == nil {
			g = &groupQueue{id: it.page.Group}
			d.groups[g.id] = g
		}
		g.items = append(g.items, it)
		d.loaded++
		d.busy.Add(1)
	}
	return nil
}

// anyReady reports whether some group's head could be sent now.
func (d *dispatcher) anyReady(now time.Time) bool {
	for _, g := range d.groups {
		if !g.inflight && len(g.items) > 0 && !g.next.After(now) {
			return true
		}
	}
	return false
}

// ready lists the groups whose head can be sent now, oldest head first.
func (d *dispatcher) ready(now time.Time) []*groupQueue {
	var out []*groupQueue
	for _, g := range d.groups {
		if !g.inflight && len(g.items) > 0 && !g.next.After(now) {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].items[0].seq < out[j].items[0].seq })
	return out
}

func (d *dispatcher) dispatch(ctx context.Context, now time.Time) {
	if now.Before(d.pause) || d.inflight >= d.b.cfg.Ntfy.Concurrency {
		// Nothing can start: skip the scan of every loaded group (the
		// profile of a 16-sender intake showed the dispatcher scanning and
		// sorting up to 4,096 groups on every webhook's wake-up). Heads
		// too old or undecodable are settled when a slot frees.
		return
	}
	if d.guard.nextToken(now) > 0 {
		// The storm guard holds everything until its next token: skip the
		// scan and sort (at 1,500 webhooks/s with thousands of groups
		// waiting, they were 20 % of the bridge's CPU). What waits now goes
		// out merged when the token comes.
		if d.anyReady(now) {
			d.guard.storm = true
		}
		return
	}
	ready := d.ready(now)
	// Records that cannot be sent are settled without a token.
	for i := 0; i < len(ready); i++ {
		g := ready[i]
		for len(g.items) > 0 && (g.items[0].bad || now.Sub(g.items[0].page.Accepted) > d.b.cfg.MaxAge) {
			it := g.items[0]
			o := tooOld
			if it.bad {
				o = failedPermanently
			}
			d.settle(ctx, g, []*pageItem{it}, o)
		}
		if len(g.items) == 0 {
			ready = append(ready[:i], ready[i+1:]...)
			i--
		}
	}
	for len(ready) > 0 && d.inflight < d.b.cfg.Ntfy.Concurrency {
		if !d.guard.take(now) {
			return // the pages wait for the next token; then they go merged
		}
		if d.guard.storm {
			d.guard.storm = false
			if len(ready) > 1 && !d.noDigest {
				d.sendDigest(ctx, ready)
				return
			}
		}
		d.sendPage(ctx, ready[0])
		ready = ready[1:]
	}
}

func (d *dispatcher) nextWake(now time.Time) time.Duration {
	wait := time.Hour
	if now.Before(d.pause) {
		return d.pause.Sub(now)
	}
	// Nothing starts before a slot frees (a result wakes the loop) or the
	// storm guard's next token: no need to scan every group.
	if d.inflight >= d.b.cfg.Ntfy.Concurrency {
		return wait
	}
	if t := d.guard.nextToken(now); t > 0 && d.loaded > 0 {
		return max(t, time.Millisecond)
	}
	anyReady := false
	for _, g := range d.groups {
		if g.inflight || len(g.items) == 0 {
			continue
		}
		if w := g.next.Sub(now); w > 0 {
			wait = min(wait, w)
		} else {
			anyReady = true
		}
		// Max-age drops happen at the next dispatch after the deadline.
		wait = min(wait, max(g.items[0].page.Accepted.Add(d.b.cfg.MaxAge).Sub(now), time.Millisecond))
	}
	if anyReady && d.inflight < d.b.cfg.Ntfy.Concurrency {
		wait = min(wait, max(d.guard.nextToken(now), time.Millisecond))
	}
	return max(wait, time.Millisecond)
}

func (d *dispatcher) sendPage(ctx context.Context, g *groupQueue) {
	it := g.items[0]
	d.start(ctx, sendResult{groups: []*groupQueue{g}, items: []*pageItem{it}, repeat: g.repeat || it.restarted,
		restarted: !g.repeat && it.restarted}, it.page)
}

// sendDigest merges every ready group's pending pages into one message.
func (d *dispatcher) sendDigest(ctx context.Context, ready []*groupQueue) {
	r := sendResult{digest: true}
	firing := map[string]int{}
	var resolvedNames []string
	nFiring, nResolved, prio := 0, 0, 1
	var lines []string
	for _, g := range ready {
		r.groups = append(r.groups, g)
		r.items = append(r.items, g.items...)
		last := g.items[len(g.items)-1].page // the group's latest state
		for _, it := range g.items {
			prio = max(prio, it.page.Priority)
		}
		if last.State == "firing" {
			nFiring++
			firing[last.Alertname] = satAdd(firing[last.Alertname], last.Count)
		} else {
			nResolved++
			resolvedNames = append(resolvedNames, last.Alertname)
		}
		lines = append(lines, last.Title)
		r.repeat = r.repeat || g.repeat
		for _, it := range g.items {
			r.restarted = r.restarted || it.restarted
		}
	}
	if r.restarted && !r.repeat {
		r.repeat = true
	} else {
		r.restarted = false
	}
	names := make([]string, 0, len(firing))
	for n := range firing {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if firing[names[i]] != firing[names[j]] {
			return firing[names[i]] > firing[names[j]]
		}
		return names[i] < names[j]
	})
	var summary []string
	if nFiring > 0 {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = mdEscape(n) + " x" + strconv.Itoa(firing[n])
		}
		summary = append(summary, fmt.Sprintf("%d more groups firing: %s", nFiring, strings.Join(parts, ", ")))
	}
	if nResolved > 0 {
		sort.Strings(resolvedNames)
		for i, n := range resolvedNames {
			resolvedNames[i] = mdEscape(n)
		}
		summary = append(summary, fmt.Sprintf("%d groups resolved: %s", nResolved, strings.Join(resolvedNames, ", ")))
	}
	title := fmt.Sprintf("[DIGEST] %d more groups firing, %d resolved", nFiring, nResolved)
	body := "Storm guard: more than " + strconv.Itoa(d.guard.perMinute) + " pages a minute, merged.\n\n" + strings.Join(summary, "\n")
	var lb strings.Builder
	for i, l := range lines {
		line := "\n- " + mdEscape(l)
		if i >= listMax || len(body)+lb.Len()+len(line)+24 > NtfyMaxMessageBytes {
			lb.WriteString("\n- +" + strconv.Itoa(len(lines)-i) + " more")
			break
		}
		lb.WriteString(line)
	}
	pg := Page{Title: TruncateUTF8(title, titleMax), Body: TruncateUTF8(body+"\n"+lb.String(), NtfyMaxMessageBytes),
		Markdown: true, Priority: prio, Tags: []string{"rotating_light", "digest"}, Click: d.b.cfg.Ntfy.DashboardURL}
	if nFiring == 0 {
		pg.Tags = []string{"white_check_mark", "digest"}
	}
	d.start(ctx, r, pg)
}

// start marks the groups in flight and publishes pg on a sender goroutine.
func (d *dispatcher) start(ctx context.Context, r sendResult, pg Page) {
	for _, g := range r.groups {
		g.inflight = true
	}
	d.inflight++
	for _, it := range r.items {
		if !it.marked {
			r.mark = append(r.mark, it)
		}
	}
	timeout := d.b.cfg.Timeout
	if r.repeat {
		timeout = max(timeout, d.b.cfg.Ntfy.RepeatTimeout)
	}
	cfg := d.b.cfg.Ntfy
	d.wg.Go(func() {
		if len(r.mark) > 0 {
			// Durably before the publish, so that a crash before its
			// settlement is committed re-sends it marked as a repeat. Many
			// senders and intake share the commit.
			seqs := make([]uint64, len(r.mark))
			for i, it := range r.mark {
				seqs[i] = it.seq
			}
			if err := d.b.spool.markAttempted(seqs); err != nil {
				r.err = &sendError{err: fmt.Errorf("recording the attempt in the spool: %w", err), retryable: true}
				select {
				case d.results <- r:
				case <-ctx.Done():
				}
				return
			}
			r.marked = true
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		body := pg.Body
		if r.restarted {
			body = "(possible repeat: alertbridge restarted while sending this; ntfy may have published it)\n\n" + body
			body = TruncateUTF8(body, NtfyMaxMessageBytes)
		} else if r.repeat {
			body = "(possible repeat: ntfy did not answer the first attempt in time)\n\n" + body
			body = TruncateUTF8(body, NtfyMaxMessageBytes)
		}
		req, err := http.NewRequestWithContext(actx, http.MethodPost, cfg.URL, strings.NewReader(body))
		if err == nil {
			req.Header = pg.Header(cfg.Token, r.repeat)
			err = do(d.b.client, req, NtfyTopic(cfg.URL))
		}
		r.err = err
		select {
		case d.results <- r:
		case <-ctx.Done():
		}
	})
}

// handle applies one send's outcome.
func (d *dispatcher) handle(ctx context.Context, r sendResult) {
	d.inflight--
	for _, g := range r.groups {
		g.inflight = false
	}
	if r.marked {
		for _, it := range r.mark {
			it.marked = true
		}
	}
	now := time.Now()
	if r.err == nil {
		d.n429, d.failStreak = 0, 0
		if was := d.authState; was != "" {
			d.authState = ""
			d.b.setNtfyAuthProblem("")
			d.b.log.Info("ntfy accepts alertbridge's pages again; delivering the held pages", "was", was)
		}
		if r.digest {
			d.b.m.digests.Inc()
			d.b.m.merged.Add(float64(len(r.items)))
		}
		if r.repeat {
			d.b.m.repeats.Inc()
		}
		byGroup := map[*groupQueue][]*pageItem{}
		for _, it := range r.items {
			for _, g := range r.groups {
				if len(g.items) > 0 && containsItem(g.items, it) {
					byGroup[g] = append(byGroup[g], it)
				}
			}
		}
		for g, its := range byGroup {
			g.attempt, g.repeat, g.shortened = 0, false, false
			d.settle(ctx, g, its, delivered)
		}
		return
	}
	var se *sendError
	if !errors.As(r.err, &se) {
		se = &sendError{err: r.err}
	}
	d.b.m.failures.WithLabelValues(TargetNtfy, se.class()).Inc()
	switch {
	case se.status == http.StatusUnauthorized || se.status == http.StatusForbidden || ntfyAuthFailureLimit(se):
		// 429 with code 42909: ntfy counted too many failed credentials
		// from this address (after 30 401s, by default) and answers so
		// before it checks the token: the token is still the problem.
		wait := d.hold(now, se.status, fmt.Sprintf("ntfy refuses alertbridge's token (HTTP %d); pages held", se.status))
		d.b.m.ntfyAuthErrors.Inc()
		d.b.log.Error("NTFY REFUSES THE TOKEN: pages stay in the spool and are retried; fix --ntfy.token / NTFY_ALERT_TOKEN or the token's write access to the topic",
			"status", se.status, "response", se.body, "retry_in", wait, "held_pages", d.loaded)
	case ntfyURLRefused(se):
		// The same for every page: the URL names no topic ntfy
		// publishes to. Held like a refused token, so Kuma shows it.
		wait := d.hold(now, se.status, fmt.Sprintf("ntfy refuses the URL (HTTP %d); pages held", se.status))
		d.b.log.Error("NTFY URL REFUSED: pages stay in the spool and are retried; set --ntfy.url / NTFY_ALERT_URL to the topic's URL, https://ntfy.example/<topic>",
			"status", se.status, "response", se.body, "retry_in", wait, "held_pages", d.loaded)
	case !r.digest && !r.groups[0].shortened && se.status == http.StatusBadRequest && !strings.Contains(se.body, "40014"):
		// ntfy refused something this page carries (its actions, as
		// ntfy parses them; a header a proxy mangled): send it once more
		// with its title, priority and body only, rather than lose it.
		g := r.groups[0]
		g.shortened = true
		pg := &g.items[0].page
		pg.Actions, pg.Click, pg.Markdown = nil, "", false
		if len(pg.Tags) > 1 {
			pg.Tags = pg.Tags[:1]
		}
		d.b.m.retried.WithLabelValues(TargetNtfy).Inc()
		d.b.log.Warn("ntfy refused the page; sending it once more without actions, click URL and markdown", "title", pg.Title, "err", se)
	case se.redirect():
		// Not a delivery, and nothing a retry soon changes: the URL is
		// wrong (http:// where ntfy redirects to https://, an old host).
		// Held like a refused token, so Kuma shows it.
		wait := d.hold(now, se.status, fmt.Sprintf("ntfy URL answers with a redirect (HTTP %d); pages held", se.status))
		d.b.log.Error("NTFY URL REDIRECTS: pages stay in the spool and are retried; set --ntfy.url / NTFY_ALERT_URL to the URL it redirects to",
			"status", se.status, "location", se.location, "retry_in", wait, "held_pages", d.loaded)
	case !r.digest && !r.groups[0].shortened && se.status == http.StatusRequestHeaderFieldsTooLarge:
		// Headers refused as too large (a proxy with a smaller limit than
		// the bounds): send the page once more with the fewest headers.
		g := r.groups[0]
		g.shortened = true
		pg := &g.items[0].page
		pg.Actions, pg.Click, pg.Title = nil, "", TruncateUTF8(pg.Title, 100)
		if len(pg.Tags) > 1 {
			pg.Tags = pg.Tags[:1]
		}
		d.b.m.retried.WithLabelValues(TargetNtfy).Inc()
		d.b.log.Warn("ntfy refused the page's headers as too large; sending it without actions and click URL", "title", pg.Title, "err", se)
	case !r.digest && !r.groups[0].shortened && (se.status == http.StatusRequestEntityTooLarge || strings.Contains(se.body, "40014")):
		// Refused as too large (a smaller message-size-limit than ntfy's
		// default): cut the page once and send it again at once.
		g := r.groups[0]
		g.shortened = true
		g.items[0].page.Body = TruncateUTF8(g.items[0].page.Body, 512)
		d.b.m.retried.WithLabelValues(TargetNtfy).Inc()
		d.b.log.Warn("ntfy refused the page as too large; sending it cut to 512 bytes", "title", g.items[0].page.Title, "err", se)
	case r.digest && se.status >= 400 && se.status < 500 && !se.retryable:
		// Dropping it would drop every page it merged. Digests stay off
		// from now on; the pages go out one by one, within the storm
		// guard's budget, each with its own handling of a refusal.
		d.noDigest = true
		d.b.m.retried.WithLabelValues(TargetNtfy).Inc()
		d.b.log.Error("ntfy refused a storm digest; its pages go out one by one, and no more digests are sent until restart",
			"groups", len(r.groups), "pages", len(r.items), "err", se)
	case se.retryable:
		d.failStreak++
		for _, g := range r.groups {
			wait := d.b.cfg.Backoff.retryWait(g.attempt, d.failStreak, se.retryAfter)
			g.attempt++
			g.next = now.Add(wait)
			if se.ambiguous {
				g.repeat = true
			}
		}
		if se.status == http.StatusTooManyRequests {
			// ntfy's limit is per client: pause the topic briefly (growing
			// with consecutive 429s, at most --delivery.backoff-max); the
			// refused page itself waits its Retry-After, others do not.
			d.pause = now.Add(d.b.cfg.Backoff.wait(d.n429, 0))
			d.n429++
		}
		d.b.m.retried.WithLabelValues(TargetNtfy).Inc()
		d.b.log.Warn("ntfy delivery failed; will retry", "title", r.groups[0].items[0].page.Title, "groups", len(r.groups),
			"attempt", r.groups[0].attempt, "retry_in", r.groups[0].next.Sub(now), "err", se)
	default:
		for _, g := range r.groups {
			its := g.items
			if !r.digest {
				its = g.items[:1]
			}
			for _, it := range its {
				d.b.m.failed.WithLabelValues(TargetNtfy).Inc()
				d.b.log.Error("notification failed permanently", "target", TargetNtfy, "title", it.page.Title, "err", se)
			}
			d.settle(ctx, g, its, failedPermanently)
		}
	}
}

// ntfyAuthFailureLimit reports whether the answer is ntfy's 429 for too
// many failed credentials (code 42909), not its request rate limit.
func ntfyAuthFailureLimit(se *sendError) bool {
	if se.status != http.StatusTooManyRequests {
		return false
	}
	var e struct {
		Code int `json:"code"`
	}
	return json.Unmarshal([]byte(se.body), &e) == nil && e.Code == 42909
}

// ntfyURLRefused reports whether ntfy's answer refuses the URL rather
// than the page: a path that is no topic (404, 405), an invalid or
// disallowed topic name (40009, 40010), or the root URL, where ntfy takes
// JSON messages only (40017).
func ntfyURLRefused(se *sendError) bool {
	switch se.status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return true
	case http.StatusBadRequest:
		var e struct {
			Code int `json:"code"`
		}
		if json.Unmarshal([]byte(se.body), &e) == nil {
			switch e.Code {
			case 40009, 40010, 40017:
				return true
			}
		}
	}
	return false
}

func containsItem(items []*pageItem, it *pageItem) bool {
	for _, x := range items {
		if x == it {
			return true
		}
	}
	return false
}

type outcome int

const (
	delivered         outcome = iota
	failedPermanently         // counted and logged by the caller
	tooOld
)

// settle removes items (pages of g, in any order) from memory at once and
// hands them to the settler, which removes them from the spool in batches
// (one fsync'd commit for all pages settled meanwhile) and then counts the
// outcome. A crash in between re-sends them: a repeat, never a loss.
func (d *dispatcher) settle(ctx context.Context, g *groupQueue, its []*pageItem, o outcome) {
	d.pendingDone.Add(int64(len(its)))
	d.doneMu.Lock()
	for _, it := range its {
		d.done = append(d.done, settled{it, o})
	}
	d.doneMu.Unlock()
	select {
	case d.doneWake <- struct{}{}:
	default:
	}
	keep := g.items[:0]
	for _, x := range g.items {
		if !containsItem(its, x) {
			keep = append(keep, x)
		}
	}
	g.items = keep
	d.loaded -= len(its)
	d.busy.Add(-int64(len(its)))
	if len(g.items) == 0 && !g.inflight {
		delete(d.groups, g.id)
	}
}

type settled struct {
	it *pageItem
	o  outcome
}

// settler commits settled pages in batches until ctx ends and the batch
// in hand is committed.
func (d *dispatcher) settler(ctx context.Context) {
	for {
		d.doneMu.Lock()
		batch := d.done
		d.done = nil
		d.doneMu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-d.doneWake:
			}
			continue
		}
		seqs := make([]uint64, len(batch))
		for i, s := range batch {
			seqs[i] = s.it.seq
		}
		for {
			err := d.b.spool.Done(TargetNtfy, seqs, nil)
			if err == nil {
				break
			}
			d.b.log.Error("spool update failed; retrying", "target", TargetNtfy, "err", err)
			if sleep(ctx, time.Second) != nil {
				return
			}
		}
		now := time.Now()
		for _, s := range batch {
			it := s.it
			switch {
			case it.bad:
				d.b.m.failed.WithLabelValues(TargetNtfy).Inc()
				d.b.log.Error("undecodable spool record dropped", "target", TargetNtfy, "seq", it.seq)
			case s.o == tooOld:
				d.b.m.dropped.WithLabelValues(TargetNtfy).Inc()
				d.b.log.Warn("notification dropped: older than --spool.max-age", "target", TargetNtfy,
					"title", it.page.Title, "accepted", it.page.Accepted)
			case s.o == delivered:
				d.b.m.sent.WithLabelValues(TargetNtfy).Inc()
				d.b.m.duration.WithLabelValues(TargetNtfy).Observe(now.Sub(it.page.Accepted).Seconds())
			}
		}
		d.pendingDone.Add(-int64(len(batch)))
	}
}

// hold keeps every page spooled for --ntfy.auth-error-backoff after an
// answer that would be the same for each of them (a refused token or URL,
// a redirect), and says why where on-call looks (Kuma, ntfy_auth_failing).
func (d *dispatcher) hold(now time.Time, status int, problem string) time.Duration {
	wait := d.b.cfg.Ntfy.AuthErrorBackoff
	d.pause = now.Add(wait)
	d.authState = fmt.Sprintf("HTTP %d", status)
	d.b.setNtfyAuthProblem(problem)
	d.b.m.retried.WithLabelValues(TargetNtfy).Inc()
	return wait
}
