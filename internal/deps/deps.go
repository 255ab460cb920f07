// Package deps pins the modules the project builds with, so go mod tidy keeps
// them while packages that use them are being written. Remove once unused.
package deps

import (
	_ "github.com/alecthomas/kingpin/v2"
	_ "github.com/axiomhq/hyperloglog"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/pires/go-proxyproto"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/prometheus/common/expfmt"
	_ "github.com/prometheus/common/promslog"
	_ "github.com/prometheus/common/promslog/flag"
	_ "github.com/prometheus/common/version"
	_ "github.com/prometheus/exporter-toolkit/web"
	_ "github.com/prometheus/exporter-toolkit/web/kingpinflag"
	_ "github.com/prometheus/procfs"
	_ "github.com/prometheus/procfs/blockdevice"
	_ "github.com/prometheus/procfs/sysfs"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/natefinch/lumberjack.v2"
	_ "pgregory.net/rapid"
)
