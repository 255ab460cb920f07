package accesslog

import (
	"time"
)

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseTime returns the time of a record in Unix seconds. It runs once per
// read batch (for the last line), not per line.
func parseTime(kind timeKind, b []byte) (float64, bool) {
	switch kind {
	case timeCLF:
		return parseCLF(b)
	case timeISO8601:
		return parseISO8601(b)
	case timeUnix:
		return parseUnix(b)
	case timeText:
		switch {
		case len(b) >= 20 && b[4] == '-' && b[10] == 'T':
			return parseISO8601(b)
		case len(b) == 26 && b[2] == '/':
			return parseCLF(b)
		}
		return parseUnix(b)
	}
	return 0, false
}

// parseISO8601 parses RFC 3339 (nginx's $time_iso8601, Caddy's rfc3339 and
// rfc3339_nano) and zap's ISO 8601 layout, whose zone has no colon (Caddy's
// iso8601 with time_local: 2026-12-02T11:00:00.500+0100). Fractional
// seconds are optional in both.
func parseISO8601(b []byte) (float64, bool) {
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04:05Z0700", string(b)); err != nil {
			return 0, false
		}
	}
	return float64(t.UnixNano()) / 1e9, true
}

// parseUnix reads a Unix time in seconds, or in milli-, micro- or
// nanoseconds (Caddy's unix_milli_float, unix_nano), told apart by size:
// 1e11 seconds is the year 5138.
func parseUnix(b []byte) (float64, bool) {
	v, ok := parseSeconds(b)
	switch {
	case !ok:
		return 0, false
	case v >= 1e17:
		v /= 1e9
	case v >= 1e14:
		v /= 1e6
	case v >= 1e11:
		v /= 1e3
	}
	return v, true
}

// parseCLF parses 10/Oct/2000:13:55:36 -0700.
func parseCLF(b []byte) (float64, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' {
		return 0, false
	}
	num := func(s []byte) (int, bool) {
		v := 0
		for _, c := range s {
			if !isDigit(c) {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	day, ok1 := num(b[0:2])
	year, ok2 := num(b[7:11])
	hh, ok3 := num(b[12:14])
	mm, ok4 := num(b[15:17])
	ss, ok5 := num(b[18:20])
	zh, ok6 := num(b[22:24])
	zm, ok7 := num(b[24:26])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return 0, false
	}
	month := 0
	for i, m := range months {
		if string(b[3:6]) == m {
			month = i + 1
			break
		}
	}
	if month == 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return 0, false
	}
	off := (zh*60 + zm) * 60
	switch b[21] {
	case '-':
		off = -off
	case '+':
	default:
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, hh, mm, ss, 0, time.UTC)
	return float64(t.Unix() - int64(off)), true
}
