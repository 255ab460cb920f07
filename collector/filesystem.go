package collector

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/clavitor/clavis-telemetry/privacy"
)

const (
	// defaultMountPointsExclude leaves out the kernel's own trees and the
	// per-container mounts of container runtimes (node_exporter's default).
	defaultMountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`

	// defaultFSTypesExclude leaves out pseudo file systems (no disk behind
	// them), read-only images, and network file systems: a statfs on a dead
	// network mount can hang, and their space belongs to another host.
	defaultFSTypesExclude = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|efivarfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs|` +
		`nfs4?|cifs|smb3?|smbfs|ncpfs|9p|afs|ceph|glusterfs|fuse\.glusterfs|fuse\.sshfs|fuse\.s3fs|fuse\.rclone|lustre|gpfs|beegfs|davfs|fuse\.davfs)$`
)

func init() {
	Register(Spec{
		Name:           "filesystem",
		DefaultEnabled: true,
		Core:           true,
		Setup: func(app *kingpin.Application) Factory {
			mpExclude := addRegexpFlag(app, "collector.filesystem.mount-points-exclude",
				"Regexp of mount points to leave out (replaced by --collector.filesystem.mount-points-include when that is set).",
				defaultMountPointsExclude)
			mpInclude := addRegexpFlag(app, "collector.filesystem.mount-points-include",
				"Regexp of the only mount points to report (instead of the exclude list).", "")
			fsExclude := addRegexpFlag(app, "collector.filesystem.fs-types-exclude",
				"Regexp of file system types to leave out: pseudo and network file systems by default (replaced by --collector.filesystem.fs-types-include when that is set).",
				defaultFSTypesExclude)
			fsInclude := addRegexpFlag(app, "collector.filesystem.fs-types-include",
				"Regexp of the only file system types to report (instead of the exclude list).", "")
			timeout := AddDurationFlag(app, "collector.filesystem.stat-timeout",
				"How long a statfs may take before its mount is reported with clavis_filesystem_device_error 1 and skipped until the call returns (10ms to 10m).",
				"2s", minStatTimeout, maxStatTimeout)
			maxMounts := AddIntFlag(app, "collector.filesystem.max-mounts",
				"Most mount points reported; beyond it the first by name are kept (/ and the vault data directory's file system always) and the rest counted in clavis_filesystem_mounts_dropped (1 to 65536).",
				strconv.Itoa(defaultMaxDevices), minMaxDevices, maxMaxDevices)
			return func(env Env) (Collector, error) {
				mounts, err := newIncludeExcludeFilter(mpInclude, mpExclude,
					"collector.filesystem.mount-points-include", "collector.filesystem.mount-points-exclude")
				if err != nil {
					return nil, err
				}
				types, err := newIncludeExcludeFilter(fsInclude, fsExclude,
					"collector.filesystem.fs-types-include", "collector.filesystem.fs-types-exclude")
				if err != nil {
					return nil, err
				}
				fs, err := procfs.NewFS(env.Paths.ProcFS)
				if err != nil {
					return nil, fmt.Errorf("opening procfs: %w", err)
				}
				if env.Enforced {
					if err := checkRootKept(mounts); err != nil {
						return nil, err
					}
				}
				return newFilesystemCollector(filesystemConfig{
					vaultDir:    flagValue(app, "vault.data-dir"),
					procfs:      fs,
					procRoot:    env.Paths.ProcFS,
					rootfs:      env.Paths.RootFS,
					mountPoints: mounts,
					fsTypes:     types,
					statTimeout: *timeout,
					maxMounts:   *maxMounts,
					stat:        statfs,
					logger:      env.Logger,
				}), nil
			}
		},
	})
}

// checkRootKept refuses, where telemetry is enforced, a mount-point filter
// that leaves out the root file system: an include of ^$ or an exclude of
// .* turns the core filesystem collector off as surely as --no-collector
// does. (The type filters are not checked: the default one rightly drops
// the overlay root of a container.)
func checkRootKept(mounts deviceFilter) error {
	const enforced = "the commercial edition always reports the root file system"
	switch {
	case mounts.include != nil && !mounts.include.MatchString("/"):
		return fmt.Errorf("%s: --collector.filesystem.mount-points-include=%s does not match \"/\"; widen it to match \"/\"", enforced, mounts.include)
	case mounts.exclude != nil && mounts.exclude.MatchString("/"):
		return fmt.Errorf("%s: --collector.filesystem.mount-points-exclude=%s matches \"/\"; narrow it so that \"/\" is kept", enforced, mounts.exclude)
	}
	return nil
}

// fsStats is what one statfs call tells about a mount, in bytes and inodes.
type fsStats struct {
	size, free, avail, files, filesFree float64
}

// statFunc reads a mounted file system's usage. It is a field of the
// collector so tests can inject one that blocks like a dead NFS server.
type statFunc func(path string) (fsStats, error)

func (cfg filesystemConfig) procPath(elem ...string) string {
	return filepath.Join(append([]string{cfg.procRoot}, elem...)...)
}

// statfs is the real statFunc.
func statfs(path string) (fsStats, error) {
	var buf unix.Statfs_t
	if err := unix.Statfs(path, &buf); err != nil {
		return fsStats{}, err
	}
	return statsOf(&buf), nil
}

// statsOf converts what statfs answered to bytes and inodes. Blocks times
// block size is multiplied in float64: a FUSE daemon (any user may mount
// one) answers what it likes, and in uint64 2^60 blocks of 1 MiB wrap to 0.
func statsOf(buf *unix.Statfs_t) fsStats {
	// POSIX counts blocks in fragment-size units; Linux reports f_frsize
	// equal to f_bsize on every common file system, but some do differ.
	unit := float64(buf.Frsize)
	if buf.Frsize <= 0 {
		unit = float64(max(buf.Bsize, 0))
	}
	return fsStats{
		size:      float64(buf.Blocks) * unit,
		free:      float64(buf.Bfree) * unit,
		avail:     float64(buf.Bavail) * unit,
		files:     float64(buf.Files),
		filesFree: float64(buf.Ffree),
	}
}

type filesystemConfig struct {
	procfs      procfs.FS
	procRoot    string // --path.procfs
	rootfs      string
	mountPoints deviceFilter
	fsTypes     deviceFilter
	statTimeout time.Duration
	// maxMounts caps the mount points reported (0 in tests: the default).
	maxMounts int
	stat      statFunc
	logger    *slog.Logger
	// vaultDir is --vault.data-dir: mount points inside it are not
	// reported (their names are vault identifiers).
	vaultDir string
}

// filesystemCollector exports size and usage of every mounted file system
// that passes the filters.
//
// statfs is a system call that can block for minutes (an NFS server gone, a
// FUSE daemon wedged), and nothing can interrupt it. So each call runs on a
// goroutine of its own and the scrape waits at most statTimeout for it. A
// mount whose call is still running after that is reported with
// clavis_filesystem_device_error 1, and no new call is started for it until
// the pending one returns: a dead mount costs one stuck goroutine, not one per
// scrape.
type filesystemCollector struct {
	cfg filesystemConfig

	size, free, avail, files, filesFree, readonly, deviceError *prometheus.Desc
	dropped                                                    *prometheus.Desc

	mu sync.Mutex
	// pending holds the stat paths whose statfs call outlived its scrape.
	pending map[string]struct{}

	// The mount table, filtered, is cached between scrapes and read again
	// only when the kernel says it changed (see mounts).
	tableMu      sync.Mutex
	table        []mount
	tableDropped int       // mount points the table left out for --collector.filesystem.max-mounts
	tableErr     error     // malformed lines the table was read without (reported every scrape it is used)
	tableFile    *os.File  // open on the mountinfo file the table came from
	tableFd      int32     // tableFile's descriptor: os.File.Fd costs an fcntl per call
	canPoll      bool      // tableFile is on procfs, whose poll reports changes
	tableAt      time.Time // when the table was read (see mountTableMaxAge)
	capLogged    bool      // the cap was logged once
	// vaultUnknownLogged: the vault data directory could not be placed at
	// the last read of the table, and that was logged.
	vaultUnknownLogged bool

	// now is the clock; tests replace it.
	now func() time.Time
}

// maxConcurrentStatfs bounds the statfs calls one scrape has in flight: a
// host with thousands of mounts must not get thousands of goroutines per
// scrape. Calls still stuck from earlier scrapes (a dead NFS server) do not
// count: their mounts are skipped until they return.
const maxConcurrentStatfs = 8

func newFilesystemCollector(cfg filesystemConfig) *filesystemCollector {
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.stat == nil {
		cfg.stat = statfs
	}
	if cfg.maxMounts <= 0 {
		cfg.maxMounts = defaultMaxDevices
	}
	labels := []string{"device", "mountpoint", "fstype"}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "filesystem", name), help, labels, nil)
	}
	return &filesystemCollector{
		cfg:         cfg,
		size:        desc("size_bytes", "File system size in bytes."),
		free:        desc("free_bytes", "Free bytes, including those reserved for root."),
		avail:       desc("avail_bytes", "Bytes available to unprivileged users."),
		files:       desc("files", "Total inodes."),
		filesFree:   desc("files_free", "Free inodes."),
		readonly:    desc("readonly", "1 if the file system is mounted read-only."),
		deviceError: desc("device_error", "1 if statfs failed or did not answer within --collector.filesystem.stat-timeout (the mount is then skipped until it answers)."),
		dropped: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "filesystem", "mounts_dropped"),
			"Mount points that passed the filters but were left out because there are more than --collector.filesystem.max-mounts.", nil, nil),
		pending: map[string]struct{}{},
		now:     time.Now,
	}
}

// mount is one file system to report.
type mount struct {
	labels   []string // device, mountpoint, fstype
	readonly float64
	statPath string
}

func (c *filesystemCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	// With malformed lines in the mount table, err says so and mounts
	// still holds the file systems of every other line: they are
	// reported, and the collector fails for the scrape.
	mounts, dropped, err := c.mounts()
	if mounts == nil && err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.GaugeValue, float64(dropped))

	type result struct {
		i   int
		st  fsStats
		err error
	}
	// Buffered for every mount: a call that returns after the scrape left
	// never blocks.
	results := make(chan result, len(mounts))
	started := make([]bool, len(mounts))
	startedAt := make([]time.Time, len(mounts))
	stuck := make([]bool, len(mounts))
	next, inFlight := 0, 0
	// start launches statfs calls until maxConcurrentStatfs are in flight,
	// skipping mounts whose call from an earlier scrape is still pending.
	start := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for ; next < len(mounts) && inFlight < maxConcurrentStatfs; next++ {
			i, m := next, mounts[next]
			if _, pending := c.pending[m.statPath]; pending {
				stuck[i] = true
				continue
			}
			c.pending[m.statPath] = struct{}{}
			started[i], startedAt[i] = true, time.Now()
			inFlight++
			go func() {
				st, err := c.cfg.stat(m.statPath)
				c.mu.Lock()
				delete(c.pending, m.statPath)
				c.mu.Unlock()
				results <- result{i, st, err}
			}()
		}
	}
	start()

	stats := make([]*result, len(mounts))
	timer := time.NewTimer(c.cfg.statTimeout)
	defer timer.Stop()
collect:
	for inFlight > 0 {
		select {
		case r := <-results:
			stats[r.i] = &r
			inFlight--
			start()
		case <-timer.C:
			break collect
		case <-ctx.Done():
			break collect
		}
	}

	gauge := func(d *prometheus.Desc, v float64, labels []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	unasked := 0
	for i, m := range mounts {
		labels := m.labels
		gauge(c.readonly, m.readonly, labels)
		r := stats[i]
		switch {
		case r == nil && !stuck[i] && (!started[i] || time.Since(startedAt[i]) < c.cfg.statTimeout):
			// Never asked, or asked too late to have its whole timeout:
			// the calls ahead of it (at most maxConcurrentStatfs at once)
			// used up the scrape's. Nothing is known of it, so no
			// device_error either: 1 would blame a healthy file system,
			// the same ones every scrape. A hung one is blamed next
			// scrape, its call still pending.
			unasked++
		case r == nil:
			// Still running (logged), or stuck since an earlier scrape.
			if started[i] {
				c.cfg.logger.Warn("statfs did not answer in time; skipping this mount until it does",
					"mountpoint", labels[1], "fstype", labels[2], "timeout", c.cfg.statTimeout)
			}
			gauge(c.deviceError, 1, labels)
		case r.err != nil:
			c.cfg.logger.Debug("statfs failed", "mountpoint", labels[1], "err", r.err)
			gauge(c.deviceError, 1, labels)
		default:
			gauge(c.deviceError, 0, labels)
			gauge(c.size, r.st.size, labels)
			gauge(c.free, r.st.free, labels)
			gauge(c.avail, r.st.avail, labels)
			gauge(c.files, r.st.files, labels)
			gauge(c.filesFree, r.st.filesFree, labels)
		}
	}
	if unasked > 0 {
		c.cfg.logger.Warn("statfs calls ahead used up the stat timeout; some mount points were not asked this scrape",
			"mount_points", unasked, "timeout", c.cfg.statTimeout, "flag", "--collector.filesystem.stat-timeout")
	}
	return err
}

// mounts returns the file systems to report, one per mount point, and how
// many were left out for the cap. Its error, with a non-nil table, names
// malformed lines the table was read without.
//
// Reading and parsing mountinfo was the most expensive part of a scrape, and
// the table rarely changes. The kernel tells when it does: poll on an open
// mountinfo file reports POLLPRI after any mount or unmount in its
// namespace. So the filtered table is kept, and read again only when that
// poll fires (or when the file is not on procfs, as with test fixtures,
// where poll cannot tell), or once it is mountTableMaxAge old.
func (c *filesystemCollector) mounts() ([]mount, int, error) {
	c.tableMu.Lock()
	defer c.tableMu.Unlock()
	now := c.now()
	if c.tableFile != nil && c.canPoll && now.Sub(c.tableAt) < mountTableMaxAge && !mountTableChanged(c.tableFd) {
		return c.table, c.tableDropped, c.tableErr
	}
	if c.tableFile != nil {
		c.tableFile.Close()
		c.tableFile, c.table, c.tableDropped, c.tableErr = nil, nil, 0, nil
	}
	table, dropped, f, err := c.readMountTable()
	if table == nil {
		return nil, 0, err
	}
	if dropped > 0 && !c.capLogged {
		c.capLogged = true
		c.cfg.logger.Warn("more mount points than --collector.filesystem.max-mounts; reporting the first by name, / and the vault data directory's file system (see clavis_filesystem_mounts_dropped)",
			"max", c.cfg.maxMounts, "dropped", dropped)
	}
	var st unix.Statfs_t
	c.tableFd = int32(f.Fd())
	c.canPoll = unix.Fstatfs(int(c.tableFd), &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
	c.table, c.tableDropped, c.tableFile, c.tableErr = table, dropped, f, err
	c.tableAt = now
	return table, dropped, err
}

// mountTableMaxAge bounds how long the cached mount table is used even
// though poll reports no change. Poll only sees mounts, unmounts and
// remounts; a file system the kernel turns read-only after an error
// changes nothing it watches, and only the super options in mountinfo say
// so. (statfs' ST_RDONLY, asked every scrape, would say it at once, but it
// also holds the read-only flag of the mount statfs goes through: in the
// README's container, every file system is seen through the read-only
// bind mount of / at --path.rootfs.) The PopFilesystemReadOnly alert
// waits 2m; reading the table once a minute costs nothing a scrape notices.
const mountTableMaxAge = time.Minute

// mountTableChanged polls the open mountinfo file without waiting.
func mountTableChanged(fd int32) bool {
	fds := []unix.PollFd{{Fd: fd, Events: unix.POLLPRI}}
	if _, err := unix.Poll(fds, 0); err != nil {
		return true
	}
	return fds[0].Revents&(unix.POLLPRI|unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0
}

// readMountTable opens the mountinfo file (kept open to poll it later),
// reads the table from it and filters it. Opening before reading means a
// change in between is seen by the next poll. A table read without some
// malformed lines is returned with the error saying so.
func (c *filesystemCollector) readMountTable() ([]mount, int, *os.File, error) {
	// PID 1's table is the host's view when we run in a container sharing
	// the host's PID namespace; /proc/1 may be hidden (hidepid), so fall back
	// to our own, as node_exporter does.
	own := false
	f, err := os.Open(c.cfg.procPath("1", "mountinfo"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		f, err = os.Open(c.cfg.procPath("self", "mountinfo"))
		own = true
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	infos, err := readMountinfo(f)
	if err != nil && !isMalformedLines(err) {
		f.Close()
		return nil, 0, nil, err
	}
	vault := c.locateVaultDir(infos, own, err != nil)
	// Logged when it starts, not at every read of the table (once a
	// minute at least: mountTableMaxAge).
	if !vault.known && !c.vaultUnknownLogged {
		c.cfg.logger.Warn("cannot tell where --vault.data-dir is in the mount table (another namespace's, or one with malformed lines); reporting only the root file system, so that no mount inside it is exported")
	}
	c.vaultUnknownLogged = !vault.known
	out := make([]mount, 0, len(infos))
	seen := make(map[string]int, len(infos))
	for _, mi := range infos {
		mp := mi.mountPoint
		if !vault.known && mp != "/" {
			continue
		}
		if c.cfg.mountPoints.ignored(mp) || c.cfg.fsTypes.ignored(mi.fsType) {
			continue
		}
		if vault.holds(mi) || inPersonalDir(mp) || vault.holdsSource(mi.source) {
			continue
		}
		statPath := filepath.Join(c.cfg.rootfs, mp)
		ro := 0.0
		if mi.readonly {
			ro = 1
		}
		mp = mountPointLabel(mp)
		m := mount{
			labels: []string{
				labelValue(cutPersonalDirs(deviceLabel(mi.source))),
				mp,
				labelValue(mi.fsType),
			},
			readonly: ro,
			statPath: statPath,
		}
		// A mount point mounted over several times shows the last mount
		// (later lines are on top); one series per mount point (per label
		// value: two mount points may read the same once cut or scrubbed)
		// also keeps the exposition free of duplicates.
		if i, dup := seen[mp]; dup {
			out[i] = m
			continue
		}
		seen[mp] = len(out)
		out = append(out, m)
	}
	out, dropped := capMounts(out, c.cfg.maxMounts, vault.dataMount(out))
	return out, dropped, f, err
}

// capMounts keeps at most max mounts: "/" and the vault data directory's
// file system (keep, "" when unknown) whatever happens, then the others in
// mount point order, so which ones are kept does not change from scrape to
// scrape. It returns the kept mounts, sorted by mount point, and how many
// were dropped.
func capMounts(ms []mount, max int, keep string) ([]mount, int) {
	slices.SortFunc(ms, func(a, b mount) int { return strings.Compare(a.labels[1], b.labels[1]) })
	if len(ms) <= max {
		return ms, 0
	}
	always := func(m mount) bool { return m.labels[1] == "/" || (keep != "" && m.labels[1] == keep) }
	room := max
	for _, m := range ms {
		if always(m) {
			room--
		}
	}
	out := ms[:0:0]
	for _, m := range ms {
		if always(m) {
			out = append(out, m)
		} else if room > 0 {
			out = append(out, m)
			room--
		}
	}
	return out, len(ms) - len(out)
}

// vaultPlace is where the vault data directory is in the mount table the
// collector reports.
type vaultPlace struct {
	// known is false when the table is another mount namespace's (the
	// host's, seen from a container) and the directory could not be placed
	// in it.
	known bool
	// paths are the directory's paths in the table's namespace: as given,
	// with symbolic links resolved, each also with --path.rootfs cut off,
	// and the host paths the bind mount holding it maps to.
	paths []string
	// dev and root name the directory by file system: the mount's
	// major:minor and the path inside that file system ("" when unknown).
	// A mount of the same file system whose root lies inside it is a bind
	// of something inside the data directory, wherever it is mounted.
	dev, root string
}

// holds reports whether a mount lies inside the vault data directory: its
// mount point below one of the directory's paths, or its source (a bind
// mount's root) inside the directory.
func (v vaultPlace) holds(mi mountEntry) bool {
	for _, p := range v.paths {
		if insideDir(mi.mountPoint, p) {
			return true
		}
	}
	return v.root != "" && mi.dev == v.dev && insideDir(mi.root, v.root)
}

// holdsSource reports whether a mount's source is a path inside the vault
// data directory: a FUSE file system over one vault's files (gocryptfs,
// encfs, bindfs name their source after the directory they serve) is a
// mount of that vault, wherever it is mounted, and its device label would
// carry the vault's identifier. Such a mount is not reported at all: its
// mount point is as likely to be named after the vault.
func (v vaultPlace) holdsSource(source string) bool {
	if !strings.HasPrefix(source, "/") {
		return false
	}
	for _, p := range v.paths {
		if insideDir(source, p) {
			return true
		}
	}
	return false
}

// dataMount returns the mount point, among ms, of the file system holding
// the data directory ("" when none does): the longest one containing one
// of its paths.
func (v vaultPlace) dataMount(ms []mount) string {
	best := ""
	for _, m := range ms {
		mp := m.labels[1]
		if len(mp) <= len(best) {
			continue
		}
		for _, p := range v.paths {
			if p == mp || insideDir(p, mp) {
				best = mp
				break
			}
		}
	}
	return best
}

// locateVaultDir finds the vault data directory in table, the mount table
// the collector reports (own: the table is this process's own namespace).
//
// Mount points inside the data directory are named after vault identifiers
// and must never be reported, but the table may name the directory
// differently from --vault.data-dir: the flag may go through a symbolic
// link (the table shows resolved paths), and in a container the table is
// the host's (PID 1's, seen through --path.procfs) while the flag is the
// container's path of a bind mount (docker run -v
// /var/lib/clavitor/vaults:/vaults ... --vault.data-dir=/vaults). The
// directory is therefore placed by what the kernel says: the mount holding
// it in this process's own mountinfo gives its file system (major:minor)
// and its path inside that file system (the mount's root field, the bind
// source); every mount of that file system in the reported table whose
// root contains that path shows the directory at a host path. Host paths
// are never stat'ed for device and inode numbers: this runs on the scrape
// path, and a dead network mount would hang it. Only the flag's own path
// is resolved (EvalSymlinks, an lstat per component), once per change of
// the mount table; it is the vault index's directory, local to the POP.
//
// Fail safe: when the reported table is another namespace's and this
// process's own mountinfo cannot be read (or names no mount holding the
// directory), where the directory is on the host cannot be told. Any
// mount point but / might then be inside it, and a vault identifier must
// never be exported, so only the root file system is reported, with a
// warning. When the directory's file system is simply not mounted in the
// reported namespace, no mount there can be inside it: that is known.
// So is a table with malformed lines (tableBad) when it is this process's
// own: the line skipped may have been the mount holding the directory.
func (c *filesystemCollector) locateVaultDir(table []mountEntry, own, tableBad bool) vaultPlace {
	dir := c.cfg.vaultDir
	if dir == "" {
		return vaultPlace{known: true}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	resolved := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		resolved = r
	}
	v := vaultPlace{}
	add := func(p string) {
		v.paths = append(v.paths, p)
		if root := filepath.Clean(c.cfg.rootfs); root != "/" && root != "." {
			if rel, ok := strings.CutPrefix(p, root+"/"); ok {
				v.paths = append(v.paths, "/"+rel)
			}
		}
	}
	add(dir)
	if resolved != dir {
		add(resolved)
	}
	ownTable := table
	if own && tableBad {
		return v
	}
	if !own {
		// Any error, malformed lines included, leaves the place unknown.
		t, err := c.readOwnMountinfo()
		if err != nil {
			return v
		}
		ownTable = t
	}
	holder, ok := holdingMount(ownTable, resolved)
	if !ok {
		v.known = own
		return v
	}
	v.known = true
	v.dev = holder.dev
	v.root = filepath.Join(holder.root, strings.TrimPrefix(resolved, holder.mountPoint))
	for _, mi := range table {
		if mi.dev != v.dev {
			continue
		}
		if mi.root == v.root {
			v.paths = append(v.paths, mi.mountPoint)
		} else if rest, ok := strings.CutPrefix(v.root, strings.TrimSuffix(mi.root, "/")+"/"); ok {
			v.paths = append(v.paths, filepath.Join(mi.mountPoint, rest))
		}
	}
	return v
}

// readOwnMountinfo reads this process's own mount table (through
// --path.procfs, so tests can give one).
func (c *filesystemCollector) readOwnMountinfo() ([]mountEntry, error) {
	f, err := os.Open(c.cfg.procPath("self", "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readMountinfo(f)
}

// holdingMount returns the mount of table that holds path: the one on top
// (later lines are on top) of the longest mount point containing it.
func holdingMount(table []mountEntry, path string) (mountEntry, bool) {
	var best mountEntry
	found := false
	for _, mi := range table {
		if mi.mountPoint != path && !insideDir(path, mi.mountPoint) {
			continue
		}
		if !found || len(mi.mountPoint) >= len(best.mountPoint) {
			best, found = mi, true
		}
	}
	return best, found
}

// inPersonalDir reports whether mount point mp lies inside a tree whose
// first component below it names a person: home directories (/home/alice,
// /var/home/alice on image-based distributions), per-user runtime
// directories (/run/user/1000) and the removable media udisks mounts per
// user (/media/alice/USB, /run/media/alice/USB). A mount point inside one
// is never reported, whatever the include flags say: a label would carry
// the user's name. The trees themselves (a separate /home file system) are
// reported.
func inPersonalDir(mp string) bool {
	for _, dir := range [...]string{"/home", "/var/home", "/run/user", "/media", "/run/media"} {
		if insideDir(mp, dir) {
			return true
		}
	}
	return false
}

// cutPersonalDirs replaces, in a device label, the path component that
// names a person below a personal tree (see inPersonalDir) with "_": a
// FUSE source (/home/alice/.encrypted) or a network server's path
// (_:/home/alice) would carry the user's name. "/home" alone is kept.
func cutPersonalDirs(label string) string {
	for _, dir := range [...]string{"/home/", "/var/home/", "/run/user/", "/media/", "/run/media/"} {
		for from := 0; ; {
			i := strings.Index(label[from:], dir)
			if i < 0 {
				break
			}
			start := from + i + len(dir)
			end := strings.IndexByte(label[start:], '/')
			if end < 0 {
				end = len(label) - start
			}
			if end > 0 && label[start:start+end] != "_" {
				label = label[:start] + "_" + label[start+end:]
			}
			from = start
		}
	}
	return label
}

// unescapeMountinfo decodes the octal escapes (\040 for a space, \011, \012,
// \134) the kernel writes into mountinfo paths. Anything that is not a
// three-digit octal escape is kept as is.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			if s[i+1] <= '3' { // \400 and above do not fit a byte
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// deviceLabel keeps the mount source as the device label, except for what
// names another host or a person, which a label must never carry:
//
//   - the server of a network source ("host:/export", "[v6]:/export",
//     "mon1:6789,mon2:6789:/", "user@host:/path") becomes "_" ("_:/export");
//   - the host of a URL source (davfs, rclone: "https://dav.example/x")
//     becomes "_" ("https://_/x"), as does the server of "//host/share";
//   - a source that is only a host or user@host ("alice@example.com",
//     "fe80::1%eth0", "host:share") becomes "_";
//   - any address left in what remains is replaced by "_".
//
// Local sources (/dev/sda1, tmpfs, pool/dataset, pool/ds@snap) pass
// unchanged.
func deviceLabel(source string) string {
	return privacy.ReplaceAddresses(deviceLabelHostless(source), "_")
}

// labelValue makes a label value of a mount's text (the device label,
// the file system type; mountPointLabel for the mount point) or a device
// name: valid UTF-8 (paths are bytes to the kernel) and at most
// privacy.MaxLabelValueBytes long (the gate drops a longer one with its
// series: a kubelet volume's mount point is often 150 bytes or more). A
// longer value keeps its head and tail, and a hash of the whole in
// between, so two long values stay two series.
func labelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	// An address or an e-mail address in the value is left whole for the
	// privacy gate, which drops the series and counts it in
	// clavis_privacy_redactions_total (issue 13: such values are dropped
	// and counted), so the operator learns of a mount or interface named
	// after a host instead of finding it renamed. Device labels have their
	// hosts cut before (deviceLabel).
	if privacy.ContainsAddress(s) || privacy.IsEmailShaped(s) {
		return s
	}
	if len(s) > privacy.MaxLabelValueBytes {
		s = cutLabel(s)
		// Cutting joined what is left into a shape the detectors find:
		// nothing of the value is kept.
		if privacy.ContainsAddress(s) || privacy.IsEmailShaped(s) {
			return "_"
		}
	}
	return s
}

// cutLabel cuts a label value longer than privacy.MaxLabelValueBytes to
// fit: its head and tail, on character boundaries, around a hash of the
// whole.
func cutLabel(s string) string {
	// The hash is of text already scrubbed: it stands for nothing that
	// could not be exported as is.
	h := fnv.New32a()
	h.Write([]byte(s))
	mid := fmt.Sprintf("…%08x…", h.Sum32())
	room := privacy.MaxLabelValueBytes - len(mid)
	head, tail := room/2, room-room/2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	// Cutting can join what is left into an address ("…1.2.3.45" of
	// "1.2.3.45678"): scrub once more; that only shortens it.
	return privacy.ReplaceAddresses(s[:head]+mid+s[start:], "_")
}

// mountPointLabel is labelValue for a mount point, where a path component
// shaped user@host ("/mnt/alice@devbox", an sshfs habit) is cut as well:
// the gate lets a host without a dot through, a label must not carry it.
// An e-mail address (a host with a dot) is the gate's to drop and count.
func mountPointLabel(mp string) string {
	if strings.IndexByte(mp, '@') >= 0 {
		parts := strings.Split(mp, "/")
		for i, p := range parts {
			if userAtHost(p) && !privacy.IsEmailShaped(p) {
				parts[i] = "_"
			}
		}
		mp = strings.Join(parts, "/")
	}
	return labelValue(mp)
}

// userAtHost reports whether a path component reads as user@host: text,
// '@', then a host name (a letter, then letters, digits, '.', '-').
// "@home" (a btrfs subvolume) and "backup@2024" are not.
func userAtHost(p string) bool {
	i := strings.LastIndexByte(p, '@')
	if i <= 0 || i == len(p)-1 {
		return false
	}
	host := p[i+1:]
	for j := 0; j < len(host); j++ {
		c := host[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func hasNonASCIIByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func deviceLabelHostless(source string) string {
	if i := strings.Index(source, "://"); i > 0 && isURLScheme(source[:i]) {
		rest := source[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return source[:i] + "://_" + rest[j:]
		}
		return source[:i] + "://_"
	}
	if rest, ok := strings.CutPrefix(source, "//"); ok { // CIFS/SMB: //server/share
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return "//_" + rest[i:]
		}
		return "//_"
	}
	if strings.HasPrefix(source, "/") {
		return source
	}
	if i := strings.Index(source, ":/"); i >= 0 {
		return "_" + source[i:]
	}
	if strings.HasSuffix(source, ":") { // "user@host:": the server's root
		return "_:"
	}
	if strings.IndexByte(source, ':') >= 0 {
		return "_"
	}
	// user@host (sshfs and fuse sources without a path). A ZFS snapshot
	// (pool/ds@snap) has a '/' before its '@'.
	if i := strings.IndexByte(source, '@'); i >= 0 && strings.IndexByte(source[:i], '/') < 0 {
		return "_"
	}
	return source
}

// isURLScheme reports whether s is an RFC 3986 scheme.
func isURLScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// insideDir reports whether mount point mp lies strictly inside dir: the
// vault data directory's own file system is reported, the per-vault mounts
// below it (bind mounts named after vault identifiers) are not.
func insideDir(mp, dir string) bool {
	if dir == "" {
		return false
	}
	dir = filepath.Clean(dir)
	if dir == "/" {
		return mp != "/"
	}
	return strings.HasPrefix(filepath.Clean(mp), dir+"/")
}

// mountEntry is one line of a mountinfo file: the fields this collector
// uses, paths unescaped.
type mountEntry struct {
	id             int
	dev            string // major:minor of the file system
	root           string // the directory of the file system mounted here (a bind mount's source)
	mountPoint     string
	readonly       bool
	fsType, source string
}

// maxMountinfoBytes bounds one read of a mountinfo file. A host with
// 100,000 mounts writes about 15 MB; a file larger than this is refused
// rather than held in memory.
const maxMountinfoBytes = 64 << 20

// readMountinfo reads a mountinfo file (proc_pid_mountinfo(5)).
//
// Bespoke, not procfs's parser (v0.23.0), for two user-visible failures:
// procfs reads the table with a bufio.Scanner, whose 64 KiB line limit
// makes one overlay mount with a long lowerdir= (containerd with many
// layers) fail the whole table, so not even / is reported; and its errors
// quote the whole line, which names vault identifiers and home directories,
// into the collector's error log. Here lines have no length limit, and an
// error names the line's number only. Only the fields the collector uses
// are taken.
//
// A malformed line costs only itself: the entries of every other line are
// returned with a *malformedLinesError (see isMalformedLines).
func readMountinfo(r io.Reader) ([]mountEntry, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxMountinfoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	if len(data) > maxMountinfoBytes {
		return nil, fmt.Errorf("reading mountinfo: larger than %d bytes", maxMountinfoBytes)
	}
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil, nil
	}
	var out []mountEntry
	var bad *malformedLinesError
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		n++
		mi, ok := parseMountinfoLine(line)
		if !ok {
			if bad == nil {
				bad = &malformedLinesError{first: n}
			}
			bad.count++
			continue
		}
		out = append(out, mi)
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

// malformedLinesError is readMountinfo's error when lines were skipped. It
// names the first one by number, never by content.
type malformedLinesError struct{ first, count int }

func (e *malformedLinesError) Error() string {
	if e.count == 1 {
		return fmt.Sprintf("reading mountinfo: line %d is malformed", e.first)
	}
	return fmt.Sprintf("reading mountinfo: line %d is malformed, and %d more", e.first, e.count-1)
}

// isMalformedLines reports whether err is readMountinfo's "lines skipped",
// which comes with the other lines' entries.
func isMalformedLines(err error) bool {
	var e *malformedLinesError
	return errors.As(err, &e)
}

// parseMountinfoLine parses "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 -
// ext3 /dev/root rw,errors=continue": mount ID, parent ID, major:minor,
// root, mount point, mount options, optional fields up to "-", then file
// system type, source and super options.
//
// Fields are split at runs of spaces (the kernel escapes a space in a path
// as \040 and writes one between fields; procfs, and so node_exporter,
// accept more), and only at spaces: a path may hold a no-break or other
// Unicode space, which the kernel writes as is.
func parseMountinfoLine(line string) (mountEntry, bool) {
	fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' })
	sep := slices.Index(fields, "-")
	if sep < 6 || len(fields) < sep+4 {
		return mountEntry{}, false
	}
	id, err := strconv.Atoi(fields[0])
	if err != nil {
		return mountEntry{}, false
	}
	if _, err := strconv.Atoi(fields[1]); err != nil {
		return mountEntry{}, false
	}
	mi := mountEntry{
		id:         id,
		dev:        fields[2],
		root:       unescapeMountinfo(fields[3]),
		mountPoint: unescapeMountinfo(fields[4]),
		fsType:     fields[sep+1],
		source:     unescapeMountinfo(fields[sep+2]),
	}
	if !strings.HasPrefix(mi.mountPoint, "/") || mi.fsType == "" {
		return mountEntry{}, false
	}
	// Read-only is a flag of the mount (its options) or of the file system
	// (the super options): a file system the kernel turned read-only after
	// errors (ext4's errors=remount-ro; recent kernels' ext4 may say
	// "emergency_ro" instead) keeps "rw" in the mount's options, and only
	// its super options say so. The PopFilesystemReadOnly alert is for
	// that case.
	for opt := range strings.SplitSeq(fields[5]+","+fields[sep+3], ",") {
		if opt == "ro" || opt == "emergency_ro" {
			mi.readonly = true
		}
	}
	return mi, true
}
