package exposition

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Handler serves g like promhttp.HandlerForTransactional(g, opts), and
// answers the common request itself: text or OpenMetrics, uncompressed
// (compression off, or not asked for), no name[] filter. That request is
// gathered once, encoded with AppendFamily into a pooled buffer and sent in
// one write with a Content-Length, with promhttp's headers, status codes
// and messages. Every other request (protobuf, gzip, zstd, filters) goes to
// promhttp as is.
//
// The fast path implements opts.MaxRequestsInFlight (for both paths),
// ErrorLog and ErrorHandling ContinueOnError. Options it does not
// implement (another ErrorHandling, Registry, Timeout, created samples, a
// process start time header, custom formats or compressions, coalesced
// gathers) send every request to promhttp.
func Handler(g prometheus.TransactionalGatherer, opts promhttp.HandlerOpts) http.Handler {
	inner := opts
	inner.MaxRequestsInFlight = 0 // enforced here, once, for both paths
	h := &handler{
		g:           g,
		opts:        opts,
		promhttp:    promhttp.HandlerForTransactional(g, inner),
		compression: !opts.DisableCompression,
		fast: opts.ErrorHandling == promhttp.ContinueOnError && opts.Registry == nil && opts.Timeout <= 0 &&
			!opts.EnableOpenMetricsTextCreatedSamples && opts.ProcessStartTime.IsZero() &&
			len(opts.AcceptedFormats) == 0 && len(opts.OfferedCompressions) == 0 && !opts.CoalesceGather,
		buffers: sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	if opts.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	h.accepted = expfmt.DefaultAcceptedFormats()
	if opts.EnableOpenMetrics {
		h.accepted = expfmt.DefaultOpenMetricsAcceptedFormats()
	}
	return h
}

// negotiation is the outcome of one Accept header.
type negotiation struct {
	accept      string
	format      expfmt.Format
	fast        bool // a format AppendFamily writes
	openMetrics bool
}

// negotiate is expfmt.NegotiateAccept, remembered for the last Accept
// header seen: a Prometheus server sends the same one on every scrape, and
// parsing it cost a twentieth of a scrape. NegotiateAccept reads only that
// header (and model.NameEscapingScheme, which this program never changes).
func (h *handler) negotiate(header http.Header) *negotiation {
	accept := header.Get("Accept")
	if n := h.last.Load(); n != nil && n.accept == accept {
		return n
	}
	format := expfmt.NegotiateAccept(header, h.accepted...)
	n := &negotiation{accept: accept, format: format}
	// expfmt writes OpenMetrics 2.0 differently; only 1.0 (and its
	// 0.0.1 alias) and text 0.0.4 take the fast path.
	version := ""
	if _, params, err := mime.ParseMediaType(string(format)); err == nil {
		version = params["version"]
	}
	switch format.FormatType() {
	case expfmt.TypeTextPlain:
		n.fast = version == "0.0.4"
	case expfmt.TypeOpenMetrics:
		n.fast = version == expfmt.OpenMetricsVersion_1_0_0 || version == expfmt.OpenMetricsVersion_0_0_1
		n.openMetrics = true
	}
	h.last.Store(n)
	return n
}

type handler struct {
	last        atomic.Pointer[negotiation]
	g           prometheus.TransactionalGatherer
	opts        promhttp.HandlerOpts
	promhttp    http.Handler
	fast        bool
	compression bool
	accepted    []expfmt.Format
	inFlight    chan struct{}
	buffers     sync.Pool // *bytes.Buffer
}

// maxPooledBuffer keeps one unusually large response from being held.
const maxPooledBuffer = 1 << 20

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, fmt.Sprintf(
				"Limit of concurrent requests reached (%d), try again later.", h.opts.MaxRequestsInFlight,
			), http.StatusServiceUnavailable)
			return
		}
	}
	n := h.negotiate(r.Header)
	format, openMetrics := n.format, n.openMetrics
	if !h.fast || !n.fast ||
		(h.compression && !identityOnly(r.Header.Get("Accept-Encoding"))) ||
		(r.URL != nil && r.URL.Query().Has("name[]")) {
		h.promhttp.ServeHTTP(w, r)
		return
	}

	mfs, done, err := h.g.Gather()
	defer done()
	if err != nil {
		if h.opts.ErrorLog != nil {
			h.opts.ErrorLog.Println("error gathering metrics:", err)
		}
		if len(mfs) == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
	}

	buf := h.buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			h.buffers.Put(buf)
		}
	}()
	buf.Reset()
	var enc expfmt.Encoder // for the families AppendFamily leaves to expfmt
	out := buf.AvailableBuffer()
	for _, mf := range mfs {
		var ok bool
		if out, ok = AppendFamily(out, mf, openMetrics); ok {
			continue
		}
		buf.Write(out)
		if enc == nil {
			enc = expfmt.NewEncoder(buf, format)
		}
		if err := enc.Encode(mf); err != nil && h.opts.ErrorLog != nil {
			h.opts.ErrorLog.Println("error encoding and sending metric family:", err)
		}
		out = buf.AvailableBuffer()
	}
	if openMetrics {
		out = append(out, "# EOF\n"...)
	}
	buf.Write(out)

	header := w.Header()
	header.Add("Vary", "Accept")
	if h.compression {
		header.Add("Vary", "Accept-Encoding")
	}
	header.Set("Content-Type", string(format))
	header.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes()) // a scraper gone away is no error of ours
	}
}

// identityOnly reports whether an Accept-Encoding header leaves promhttp no
// compression to choose: absent, or "identity" alone.
func identityOnly(acceptEncoding string) bool {
	return acceptEncoding == "" || strings.EqualFold(strings.TrimSpace(acceptEncoding), "identity")
}
