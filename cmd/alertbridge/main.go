// Command alertbridge turns Alertmanager webhooks into ntfy pages and Uptime
// Kuma push state, spooling every alert durably before answering 2xx. The
// logic lives in package alertbridge; this file is flags and wiring.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/clavitor/clavis-telemetry/alertbridge"
	"github.com/clavitor/clavis-telemetry/internal/cliflag"
	"github.com/clavitor/clavis-telemetry/internal/logscrub"
)

const (
	program = "alertbridge"
	// DefaultListenAddress is next to clavis-telemetry's :9745.
	DefaultListenAddress = ":9746"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New(program, "Turns Alertmanager webhook notifications into ntfy pages and Uptime Kuma push state, losing nothing and sending nothing twice.")
	webFlags := kingpinflag.AddFlags(app, DefaultListenAddress)
	tokenFile := app.Flag("webhook.token-file", "File holding the bearer token Alertmanager must send to /webhook (http_config.authorization.credentials_file); one line, a trailing newline is dropped. Without it, basic_auth_users in --web.config.file must be set, or --webhook.insecure-no-auth given.").String()
	insecure := app.Flag("webhook.insecure-no-auth", "Start without a webhook token or basic auth: anyone who reaches the port can page and fake the Watchdog. Bodies are then limited to 1 MiB. For tests only.").Bool()
	maxBody := sizeFlag(app, "webhook.max-body-bytes", "Largest webhook body from an authenticated sender (Alertmanager sends a whole group in one body).", "33554432", 64<<10, 1<<30)
	maxConcurrent := intFlag(app, "webhook.max-concurrent", "Webhooks read at once; more wait up to 10 s, then get 503 (Alertmanager retries). With --webhook.max-body-bytes it bounds intake memory.", "16", 1, 1024)

	spoolPath := app.Flag("spool.path", "bbolt spool file; created with its directory if missing. Anything else there (a directory, a FIFO, a file that is not a bbolt database) is refused.").Default("data/alertbridge.db").String()
	maxAge := durationFlag(app, "spool.max-age", "Notifications still undelivered after this long are dropped and counted.", "24h", time.Minute, 30*24*time.Hour, false)
	compactMin := sizeFlag(app, "spool.compact-min-bytes", "The running spool is rewritten compactly when its file is at least this big, at least half free, and holds at most --spool.compact-max-live-bytes of live data (checked every minute).", "67108864", 1<<20, 64<<30)
	compactMaxLive := sizeFlag(app, "spool.compact-max-live-bytes", "Most live data a running compaction copies; it bounds how long compaction holds intake (about 0.3 s for 32 MiB).", "33554432", 1<<20, 1<<30)
	dedupRetention := durationFlag(app, "spool.dedup-retention", "How long alert keys (fingerprint, status, startsAt) are remembered to drop duplicates; at least --spool.max-age (raised to it if shorter).", "168h", time.Hour, 365*24*time.Hour, false)

	ntfyURL := app.Flag("ntfy.url", "Full ntfy topic URL, e.g. https://ntfy.example.com/clavis-alerts. Empty: ntfy disabled.").Envar("NTFY_ALERT_URL").String()
	ntfyToken := app.Flag("ntfy.token", "ntfy access token, sent as Authorization: Bearer; no control characters.").Envar("NTFY_ALERT_TOKEN").String()
	clickURL := app.Flag("ntfy.click-url", "Dashboard URL used as the click URL and the Dashboard action (default click URL: the alert's generatorURL).").String()
	priorities := app.Flag("ntfy.priority", "Severity to ntfy priority (1-5) mapping, repeatable: --ntfy.priority=critical=5. Merged over critical=5, warning=4, info=2.").StringMap()
	defaultPriority := intFlag(app, "ntfy.default-priority", "ntfy priority of firing alerts whose severity has no mapping.", "3", 1, 5)
	resolvedPriority := intFlag(app, "ntfy.resolved-priority", "ntfy priority of resolved notifications.", "3", 1, 5)
	infoGroups := app.Flag("ntfy.info-groups", "Groups whose firing alerts are all severity info: low (sent at the info priority, default 2) or drop (not paged; still in the outage log).").Default("low").Enum("low", "drop")
	perMinute := intFlag(app, "ntfy.max-per-minute", "Storm guard: at most this many ntfy messages a minute; pending pages beyond are merged into one digest.", "10", 1, 100000)
	ntfyConcurrency := intFlag(app, "ntfy.concurrency", "ntfy publishes in flight at once (pages of one group stay in order).", "4", 1, 64)
	authBackoff := durationFlag(app, "ntfy.auth-error-backoff", "Wait between attempts while ntfy answers 401/403 (pages stay spooled).", "5m", time.Second, time.Hour, false)
	repeatInterval := durationFlag(app, "ntfy.repeat-interval", "Page a group again (a reminder) when Alertmanager re-sends it still firing and unchanged this long after its last page, unless acknowledged with the Ack action. 0: pages for changes only.", "0", time.Minute, 7*24*time.Hour, true)
	externalURL := app.Flag("web.external-url", "URL at which phones reach this alertbridge (behind a reverse proxy, its public URL). With --action.secret-file and --alertmanager.url, firing pages carry the Silence and Ack actions, which call <url>/action/....").String()
	actionSecretFile := app.Flag("action.secret-file", "File with the secret (at least 16 bytes) that signs the phone actions' tokens.").String()
	alertmanagerURL := app.Flag("alertmanager.url", "Alertmanager that gets the silences of the Silence action (API v2), e.g. http://127.0.0.1:9093.").String()
	actionTTL := durationFlag(app, "action.ttl", "How long a page's actions stay valid.", "24h", time.Minute, 30*24*time.Hour, false)
	silenceFor := durationFlag(app, "action.silence-duration", "Length of the silence the Silence action creates.", "1h", time.Minute, 30*24*time.Hour, false)
	repeatTimeout := durationFlag(app, "ntfy.repeat-timeout", "Timeout of the one repeat after an attempt ntfy did not answer within --delivery.timeout (it may have published it).", "2m", time.Second, time.Hour, false)

	kumaURL := app.Flag("kuma.push-url", "Uptime Kuma push monitor URL, e.g. https://kuma.example.com/api/push/TOKEN. Empty: Kuma disabled.").Envar("KUMA_PUSH_URL").String()
	downSeverities := app.Flag("kuma.down-severity", "Severity label values whose firing alerts set the Kuma monitor down (repeatable).").Default("critical").Strings()
	kumaConfigBackoff := durationFlag(app, "kuma.config-error-backoff", "Wait between pushes while Kuma answers 404 (unknown push token).", "5m", time.Second, time.Hour, false)
	firingTTL := durationFlag(app, "kuma.firing-ttl", "An outage Alertmanager has not re-sent for this long (nor extended by its endsAt) stops holding Kuma down. Keep above the repeat_interval of the down-severity routes.", "2h", time.Minute, 30*24*time.Hour, false)

	backoffMin := durationFlag(app, "delivery.backoff-min", "First retry delay; doubles per failure while the target fails every attempt, with jitter.", "250ms", 10*time.Millisecond, time.Minute, false)
	backoffMax := durationFlag(app, "delivery.backoff-max", "Longest retry delay; at least --delivery.backoff-min.", "1m", 10*time.Millisecond, time.Hour, false)
	maxRetryAfter := durationFlag(app, "delivery.max-retry-after", "Longest wait a Retry-After header is honoured for.", "10m", time.Second, 24*time.Hour, false)
	timeout := durationFlag(app, "delivery.timeout", "Timeout of one delivery attempt.", "10s", time.Second, 5*time.Minute, false)
	watchdog := app.Flag("watchdog.alertname", "Name of the always-firing heartbeat alert: never sent to ntfy, every copy pushes Kuma.").Default("Watchdog").String()
	watchdogInterval := durationFlag(app, "watchdog.interval", "When no Watchdog arrived for this long, all Kuma pushes stop (so Kuma's heartbeat timeout trips) until it is back; 0 disables.", "5m", 10*time.Second, 24*time.Hour, true)

	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)
	app.Version(version.Print(program))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v (see --help)\n", program, cliflag.NameError(app, args, err))
		return 2
	}
	logger := promslog.New(logCfg)
	// The outage log (one line per accepted alert) is always on, at info
	// level whatever --log.level says, in the same format and stream.
	outageLevel := promslog.NewLevel()
	outageLevel.Set("info")
	outageLogger := promslog.New(&promslog.Config{Level: outageLevel, Format: logCfg.Format, Writer: os.Stderr}).With("log", "outage")

	// Every configuration error exits 2 naming its flag, before anything
	// says starting or listening, and never with a secret in it.
	configError := func(err error) int {
		logger.Error("invalid configuration; not starting", "err", err)
		return 2
	}
	if !*webFlags.WebSystemdSocket {
		if err := checkListenAddresses(*webFlags.WebListenAddresses); err != nil {
			return configError(err)
		}
	}
	if *backoffMax < *backoffMin {
		return configError(fmt.Errorf("--delivery.backoff-max=%s is shorter than --delivery.backoff-min=%s", *backoffMax, *backoffMin))
	}
	cfg := alertbridge.Config{
		SpoolPath: *spoolPath, MaxAge: *maxAge, DedupRetention: *dedupRetention,
		Compact:           alertbridge.CompactPolicy{MinBytes: *compactMin, MaxLive: *compactMaxLive},
		WatchdogAlertname: *watchdog, WatchdogInterval: *watchdogInterval,
		MaxBodyBytes: *maxBody, MaxConcurrentIntake: *maxConcurrent,
		Backoff:      alertbridge.Backoff{Min: *backoffMin, Max: *backoffMax, MaxRetryAfter: *maxRetryAfter},
		Timeout:      *timeout,
		Logger:       logger,
		OutageLogger: outageLogger,
	}
	if *tokenFile != "" {
		tok, err := readTokenFile("--webhook.token-file", *tokenFile)
		if err != nil {
			return configError(err)
		}
		cfg.WebhookToken = tok
	}
	if *ntfyURL != "" {
		prio := alertbridge.DefaultPriorities()
		for sev, v := range *priorities {
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 5 {
				return configError(fmt.Errorf("--ntfy.priority=%s=%s: want severity=1..5", sev, v))
			}
			prio[sev] = p
		}
		cfg.Ntfy = &alertbridge.NtfyConfig{URL: *ntfyURL, Token: *ntfyToken, DashboardURL: *clickURL,
			Priorities: prio, DefaultPriority: *defaultPriority, ResolvedPriority: *resolvedPriority,
			DropInfo: *infoGroups == "drop", PerMinute: *perMinute, Concurrency: *ntfyConcurrency,
			AuthErrorBackoff: *authBackoff, RepeatTimeout: *repeatTimeout, RepeatInterval: *repeatInterval}
	}
	if *kumaURL != "" {
		cfg.Kuma = &alertbridge.KumaConfig{PushURL: *kumaURL, DownSeverities: *downSeverities, ConfigErrorBackoff: *kumaConfigBackoff, FiringTTL: *firingTTL}
	}
	switch n := countSet(*externalURL, *actionSecretFile, *alertmanagerURL); {
	case n == 3:
		secret, err := readConfigFile("--action.secret-file", *actionSecretFile, 64<<10)
		if err != nil {
			return configError(err)
		}
		secret = []byte(strings.TrimSpace(string(secret)))
		if len(secret) < 16 {
			return configError(fmt.Errorf("--action.secret-file=%s: the secret must be at least 16 bytes", *actionSecretFile))
		}
		cfg.Actions = &alertbridge.ActionsConfig{ExternalURL: *externalURL, Secret: secret, AlertmanagerURL: *alertmanagerURL,
			TTL: *actionTTL, SilenceFor: *silenceFor}
	case n > 0:
		var missing []string
		for _, f := range []struct{ name, val string }{{"--web.external-url", *externalURL},
			{"--action.secret-file", *actionSecretFile}, {"--alertmanager.url", *alertmanagerURL}} {
			if f.val == "" {
				missing = append(missing, f.name)
			}
		}
		return configError(fmt.Errorf("phone actions need all of --web.external-url, --action.secret-file and --alertmanager.url; missing: %s (or drop the others to run without phone actions)",
			strings.Join(missing, ", ")))
	}
	basicAuth, err := checkWebConfig(*webFlags.WebConfigFile)
	if err != nil {
		return configError(err)
	}
	if cfg.WebhookToken != "" && basicAuth {
		// Both checks read the one Authorization header: exporter-toolkit
		// wants Basic, the webhook Bearer, so no request could pass both
		// and every notification would be refused with 401.
		return configError(fmt.Errorf("--webhook.token-file and basic_auth_users in --web.config.file=%s are both set: each needs the request's one Authorization header (Bearer and Basic), so every webhook would be refused; use one of them", *webFlags.WebConfigFile))
	}
	cfg.Authenticated = cfg.WebhookToken != "" || basicAuth
	if !cfg.Authenticated && !*insecure {
		logger.Error("refusing to start without authentication: anyone could page on-call or fake the Watchdog. Set --webhook.token-file (Alertmanager: http_config.authorization.credentials_file) or basic_auth_users in --web.config.file; --webhook.insecure-no-auth for tests")
		return 2
	}
	if err := cfg.Validate(); err != nil {
		if alertbridge.IsConfigError(err) {
			return configError(err)
		}
		logger.Error("cannot start", "err", err)
		return 1
	}

	// The spool's absolute path: the default is relative to the working
	// directory, which an operator would otherwise have to guess.
	spoolAbs, err := filepath.Abs(*spoolPath)
	if err != nil {
		spoolAbs = *spoolPath
	}
	logger.Info("starting "+program, "version", version.Info(), "spool", spoolAbs)
	if !cfg.Authenticated {
		logger.Warn("webhook authentication is OFF (--webhook.insecure-no-auth): anyone who reaches the port can page; bodies limited to 1 MiB")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("clavis_alertbridge"),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	cfg.Registerer = reg
	bridge, err := alertbridge.New(cfg)
	if err != nil {
		if alertbridge.IsConfigError(err) {
			return configError(err)
		}
		logger.Error("cannot start", "err", err)
		return 1
	}
	defer bridge.Close()
	targets := bridge.Targets()
	if len(targets) == 0 {
		outageLogger.Warn("no notification target configured (NTFY_ALERT_URL and KUMA_PUSH_URL unset): alerts are only written to the outage log")
	} else {
		outageLogger.Info("notification targets active", "targets", strings.Join(targets, ","),
			"ntfy", cfg.Ntfy != nil, "kuma", cfg.Kuma != nil, "outage_log", true)
	}

	mux := http.NewServeMux()
	mux.Handle("/webhook", bridge)
	if h := bridge.ActionHandler(); h != nil {
		// The phone calls this with the signed token only: with basic auth
		// in --web.config.file, put a reverse proxy at --web.external-url
		// that lets /action/ through.
		mux.Handle("/action/", h)
	}
	mux.Handle("/metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError), EnableOpenMetrics: true})))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !bridge.Ready() {
			http.Error(w, "Not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        program,
		Description: "Alertmanager webhook (POST /webhook) to ntfy and Uptime Kuma. Active targets: " + strings.Join(append(targets, "outage log"), ", "),
		Version:     version.Info(),
		Links:       []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}, {Address: "/-/healthy", Text: "Health"}, {Address: "/-/ready", Text: "Ready"}},
	})
	if err != nil {
		logger.Error("landing page", "err", err)
		return 1
	}
	mux.Handle("/", landing)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bridge.Run(runCtx); close(done) }()

	// net/http's own lines (TLS handshake errors, panics) name the client's
	// address and quote its bytes: scrubbed as the POP agent's are.
	serverLog := logscrub.ServerErrorLog(slog.New(logscrub.NewHandler(logger.Handler(), logscrub.Addresses)))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, ErrorLog: serverLog}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(server, webFlags, logger) }()

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("shutting down; undelivered notifications stay in the spool")
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("listener failed", "err", err)
			code = 1
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	server.Shutdown(sctx)
	cancel()
	cancelRun()
	<-done
	return code
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}
