package alertbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff configures the retry schedule: exponential from Min, doubled per
// failure up to Max, with jitter (each wait is drawn from [d/2, d]).
type Backoff struct {
	Min time.Duration
	Max time.Duration
	// MaxRetryAfter caps how long a Retry-After header may make us wait.
	MaxRetryAfter time.Duration
}

func (b Backoff) wait(attempt int, retryAfter time.Duration) time.Duration {
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	if retryAfter > 0 {
		if retryAfter > b.MaxRetryAfter {
			retryAfter = b.MaxRetryAfter
		}
		if retryAfter > d {
			d = retryAfter
		}
	}
	return d
}

// sendError is a failed delivery attempt, classified.
type sendError struct {
	status     int // 0 for transport errors
	retryable  bool
	retryAfter time.Duration
	body       string // truncated response body
	err        error
}

func (e *sendError) Error() string {
	if e.status == 0 {
		return e.err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// do sends req and classifies the answer: nil for 2xx; retryable for 429
// (with Retry-After), 408, 5xx, timeouts and connection errors; permanent
// for every other status.
func do(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return &sendError{retryable: true, err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &sendError{status: resp.StatusCode, body: strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e.retryable = true
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		e.retryable = true
	}
	return e
}

func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errTooOld = errors.New("older than --spool.max-age")

// nextQueued returns up to n of target's oldest spooled records, waiting
// until there is at least one. Read errors are logged and retried after a
// second. It returns false once ctx is done.
func (b *Bridge) nextQueued(ctx context.Context, target string, n int) ([]Queued, bool) {
	for {
		items, err := b.spool.Peek(target, n)
		if err != nil {
			b.log.Error("spool read failed", "target", target, "err", err)
			if sleep(ctx, time.Second) != nil {
				return nil, false
			}
			continue
		}
		if len(items) > 0 {
			return items, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-b.wake[target]:
		}
	}
}

// ntfyWorker drains the ntfy queue strictly in order, one record at a time:
// a record is removed from the spool only after ntfy answered 2xx (or a
// permanent error, or max-age).
func (b *Bridge) ntfyWorker(ctx context.Context) {
	for {
		items, ok := b.nextQueued(ctx, TargetNtfy, 1)
		if !ok {
			return
		}
		it := items[0]
		err := b.deliverNtfy(ctx, &it.Record)
		if ctx.Err() != nil {
			return // shutting down: the record stays spooled
		}
		b.finish(ctx, TargetNtfy, it, err)
	}
}

// finish removes the record from the spool and then records the outcome.
func (b *Bridge) finish(ctx context.Context, target string, it Queued, err error) {
	for {
		derr := b.spool.Done(target, []uint64{it.Seq}, nil)
		if derr == nil {
			break
		}
		b.log.Error("spool update failed; retrying", "target", target, "err", derr)
		if sleep(ctx, time.Second) != nil {
			return
		}
	}
	r := &it.Record
	switch {
	case err == nil:
		b.m.sent.WithLabelValues(target).Inc()
		b.m.duration.WithLabelValues(target).Observe(time.Since(r.Accepted).Seconds())
	case errors.Is(err, errTooOld):
		b.m.dropped.WithLabelValues(target).Inc()
		b.log.Warn("notification dropped: older than --spool.max-age", "target", target,
			"alertname", r.Alertname(), "status", r.Status, "pop", r.Labels["pop"], "accepted", r.Accepted)
	default:
		b.m.failed.WithLabelValues(target).Inc()
		b.log.Error("notification failed permanently", "target", target,
			"alertname", r.Alertname(), "status", r.Status, "pop", r.Labels["pop"], "err", err)
	}
}

// deliverNtfy publishes one record, retrying until 2xx, a permanent error,
// max-age, or shutdown.
func (b *Bridge) deliverNtfy(ctx context.Context, r *Record) error {
	if r.Key == "" {
		return errors.New("undecodable spool record")
	}
	msg := BuildNtfyMessage(b.cfg.Ntfy, r)
	hdr := msg.Header(b.cfg.Ntfy.Token)
	for attempt := 0; ; attempt++ {
		if time.Since(r.Accepted) > b.cfg.MaxAge {
			return errTooOld
		}
		actx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		req, err := http.NewRequestWithContext(actx, http.MethodPost, b.cfg.Ntfy.URL, strings.NewReader(msg.Body))
		if err != nil {
			cancel()
			return err
		}
		req.Header = hdr.Clone()
		err = do(b.client, req)
		cancel()
		if err == nil {
			return nil
		}
		var se *sendError
		if !errors.As(err, &se) || !se.retryable {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.m.retried.WithLabelValues(TargetNtfy).Inc()
		wait := b.cfg.Backoff.wait(attempt, se.retryAfter)
		b.log.Warn("ntfy delivery failed; will retry", "alertname", r.Alertname(), "status", r.Status,
			"attempt", attempt+1, "retry_in", wait, "err", err)
		if sleep(ctx, wait) != nil {
			return ctx.Err()
		}
	}
}
