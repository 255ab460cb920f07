package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	Register(Spec{
		Name:           "netdev",
		DefaultEnabled: true,
		Setup: func(app *kingpin.Application) Factory {
			exclude := addRegexpFlag(app, "collector.netdev.device-exclude",
				"Regexp of network interfaces to leave out of netdev.", "^lo$")
			return func(env Env) (Collector, error) {
				if err := checkProcDir(env.Paths.ProcFS); err != nil {
					return nil, err
				}
				return newNetdevCollector(env.Paths.ProcFS, deviceFilter{exclude: exclude.Regexp()}), nil
			}
		},
	})
}

// netdevCollector exports per-interface traffic counters from /proc/net/dev.
type netdevCollector struct {
	rxBytes, txBytes, rxPackets, txPackets, rxErrs, txErrs, rxDrop, txDrop *prometheus.Desc

	mu     sync.Mutex
	file   *procFile
	ifaces []netLine // reused parse buffer
	names  *nameCache
}

func newNetdevCollector(procPath string, filter deviceFilter) *netdevCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "network", name), help, []string{"device"}, nil)
	}
	c := &netdevCollector{
		file:      newProcFile(filepath.Join(procPath, "net", "dev")),
		rxBytes:   desc("receive_bytes_total", "Bytes received by the interface."),
		txBytes:   desc("transmit_bytes_total", "Bytes transmitted by the interface."),
		rxPackets: desc("receive_packets_total", "Packets received by the interface."),
		txPackets: desc("transmit_packets_total", "Packets transmitted by the interface."),
		rxErrs:    desc("receive_errs_total", "Receive errors the driver detected."),
		txErrs:    desc("transmit_errs_total", "Transmit errors the driver detected."),
		rxDrop:    desc("receive_drop_total", "Received packets dropped (no buffer space, unknown protocol, ...)."),
		txDrop:    desc("transmit_drop_total", "Packets dropped while transmitting."),
	}
	c.names = newNameCache(filter, c.rxBytes, c.txBytes, c.rxPackets, c.txPackets, c.rxErrs, c.txErrs, c.rxDrop, c.txDrop)
	return c
}

func (c *netdevCollector) Update(_ context.Context, ch *Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.file.read()
	if err != nil {
		return fmt.Errorf("reading net/dev: %w", err)
	}
	ifaces, err := parseNetDev(b, c.ifaces)
	if err != nil {
		return err
	}
	c.ifaces = ifaces
	for _, s := range ifaces {
		// Interface names are bytes to the kernel; one that is not UTF-8
		// cannot be a label and is dropped by the cache.
		e := c.names.lookup(s.name)
		if e.ignored {
			continue
		}
		ser := e.series
		ch.Send(ser[0].counter(float64(s.rxBytes)))
		ch.Send(ser[1].counter(float64(s.txBytes)))
		ch.Send(ser[2].counter(float64(s.rxPackets)))
		ch.Send(ser[3].counter(float64(s.txPackets)))
		ch.Send(ser[4].counter(float64(s.rxErrs)))
		ch.Send(ser[5].counter(float64(s.txErrs)))
		ch.Send(ser[6].counter(float64(s.rxDrop)))
		ch.Send(ser[7].counter(float64(s.txDrop)))
	}
	return nil
}
