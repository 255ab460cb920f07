package privacy

// allowedFamilies is the privacy gate's allowlist: every metric family the
// POP may expose, with the only label names it may carry. A family that is
// not listed, or a series with a label not listed for its family, never
// leaves the POP. Add a collector's families here in the same change that
// adds the collector; the gate's tests check every registered collector's
// output against it.
var allowedFamilies = map[string][]string{
	// Scraper and build.
	"clavis_build_info":                        {"version", "revision", "edition"},
	"clavis_scrape_collector_duration_seconds": {"collector"},
	"clavis_scrape_collector_success":          {"collector"},
	"clavis_privacy_redactions_total":          {"reason"},

	// cpu
	"clavis_cpu_seconds_total": {"cpu", "mode"},
	"clavis_cpus_online":       nil, // not clavis_cpu_count: promtool lints a _count suffix on a gauge
	"clavis_boot_time_seconds": nil,

	// memory
	"clavis_memory_total_bytes":      nil,
	"clavis_memory_available_bytes":  nil,
	"clavis_memory_free_bytes":       nil,
	"clavis_memory_buffers_bytes":    nil,
	"clavis_memory_cached_bytes":     nil,
	"clavis_memory_swap_total_bytes": nil,
	"clavis_memory_swap_free_bytes":  nil,

	// loadavg
	"clavis_load1":  nil,
	"clavis_load5":  nil,
	"clavis_load15": nil,

	// filesystem
	"clavis_filesystem_size_bytes":     {"device", "mountpoint", "fstype"},
	"clavis_filesystem_free_bytes":     {"device", "mountpoint", "fstype"},
	"clavis_filesystem_avail_bytes":    {"device", "mountpoint", "fstype"},
	"clavis_filesystem_files":          {"device", "mountpoint", "fstype"},
	"clavis_filesystem_files_free":     {"device", "mountpoint", "fstype"},
	"clavis_filesystem_readonly":       {"device", "mountpoint", "fstype"},
	"clavis_filesystem_device_error":   {"device", "mountpoint", "fstype"},
	"clavis_filesystem_mounts_dropped": nil, // over --collector.filesystem.max-mounts

	// diskstats
	"clavis_disk_read_bytes_total":       {"device"},
	"clavis_disk_written_bytes_total":    {"device"},
	"clavis_disk_reads_completed_total":  {"device"},
	"clavis_disk_writes_completed_total": {"device"},
	"clavis_disk_io_time_seconds_total":  {"device"},
	"clavis_disk_devices_dropped":        nil, // over --collector.diskstats.max-devices

	// netdev
	"clavis_network_receive_bytes_total":    {"device"},
	"clavis_network_transmit_bytes_total":   {"device"},
	"clavis_network_receive_packets_total":  {"device"},
	"clavis_network_transmit_packets_total": {"device"},
	"clavis_network_receive_errs_total":     {"device"},
	"clavis_network_transmit_errs_total":    {"device"},
	"clavis_network_receive_drop_total":     {"device"},
	"clavis_network_transmit_drop_total":    {"device"},
	"clavis_network_devices_dropped":        nil, // over --collector.netdev.max-devices

	// vault
	"clavis_vaults":                       nil,
	"clavis_vault_storage_bytes":          nil,
	"clavis_vault_index_ready":            nil,
	"clavis_vault_index_live":             nil,
	"clavis_vault_result_age_seconds":     nil,
	"clavis_vault_scan_duration_seconds":  nil,
	"clavis_vault_scan_timestamp_seconds": nil,

	// accesslog
	"clavis_http_requests_total":                   {"method", "code", "route"},
	"clavis_http_request_duration_seconds":         {"route"},
	"clavis_http_response_size_bytes_total":        nil,
	"clavis_accesslog_lines_total":                 {"result"},
	"clavis_accesslog_rotations_total":             nil,
	"clavis_accesslog_following":                   nil,
	"clavis_accesslog_last_line_timestamp_seconds": nil,
	"clavis_unique_ips_24h":                        nil,
	"clavis_unique_ips_1h":                         nil,

	// tarpit
	"clavis_tarpit_connections_total":             {"protocol"},
	"clavis_tarpit_active_connections":            {"protocol"},
	"clavis_tarpit_trapped_seconds_total":         {"protocol"},
	"clavis_tarpit_bytes_sent_total":              {"protocol"},
	"clavis_tarpit_rejected_total":                {"reason"},
	"clavis_tarpit_unique_sources_24h":            nil,
	"clavis_tarpit_log_dropped_total":             nil,
	"clavis_tarpit_proxy_headers_untrusted_total": nil,
}

// AllowedLabels returns the label names the gate lets through for a family,
// and whether the family is on the allowlist at all.
func AllowedLabels(family string) ([]string, bool) {
	labels, ok := allowedFamilies[family]
	return append([]string(nil), labels...), ok
}

// Families lists every family on the allowlist, in no particular order.
func Families() []string {
	out := make([]string, 0, len(allowedFamilies))
	for name := range allowedFamilies {
		out = append(out, name)
	}
	return out
}
