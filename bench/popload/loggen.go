package main

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// logGen writes combined-format access log lines with a trailing request
// time, as nginx's `combined` plus `$request_time`: a realistic mix of
// methods, paths, codes, sizes, agents, and IPv4 and IPv6 clients (one in
// four IPv6) drawn from a pool, so the unique-IP sketch sees repeats.
type logGen struct {
	rng   *rand.Rand
	pool  int
	count uint64
}

func newLogGen(seed uint64, pool int) *logGen {
	return &logGen{rng: rand.New(rand.NewPCG(seed, 7)), pool: pool}
}

var (
	genMethods = []string{"GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"}
	genPaths   = []string{"/api/v1/vault/8f3a9c2e1b7d4f60", "/api/v1/entry/1234567", "/static/app.3f9c.js",
		"/healthz", "/login", "/wp-admin/setup-config.php", "/api/v1/vault/0b1c2d3e/sync?since=1732841234", "/", "/favicon.ico"}
	genCodes = []int{200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 304, 400, 401, 403, 404, 404, 429, 500, 502, 503}
	genUAs   = []string{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"clavitor-ios/2.4.1 (iPhone; iOS 18.1)", "clavitor-android/2.4.0", "curl/8.5.0", "Mozilla/5.0 zgrab/0.x", "-"}
	genRefs = []string{"-", "https://pop.example.net/app/", "-", "-", "https://www.example.com/"}
)

// line appends one line, stamped t, to b.
func (g *logGen) line(b []byte, t time.Time) []byte {
	g.count++
	id := g.rng.IntN(g.pool)
	if id%4 == 3 {
		b = append(b, "2001:db8:"...)
		b = strconv.AppendUint(b, uint64(id>>16), 16)
		b = append(b, "::"...)
		b = strconv.AppendUint(b, uint64(id&0xffff), 16)
	} else {
		b = strconv.AppendInt(b, int64(1+(id>>24)%223), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64((id>>16)&255), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64((id>>8)&255), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(id&255), 10)
	}
	b = append(b, " - - ["...)
	b = t.UTC().AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(b, genMethods[g.rng.IntN(len(genMethods))]...)
	b = append(b, ' ')
	b = append(b, genPaths[g.rng.IntN(len(genPaths))]...)
	b = append(b, " HTTP/1.1\" "...)
	b = strconv.AppendInt(b, int64(genCodes[g.rng.IntN(len(genCodes))]), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(g.rng.IntN(60000)), 10)
	b = append(b, " \""...)
	b = append(b, genRefs[g.rng.IntN(len(genRefs))]...)
	b = append(b, "\" \""...)
	b = append(b, genUAs[g.rng.IntN(len(genUAs))]...)
	b = append(b, "\" "...)
	ms := g.rng.IntN(2000)
	b = strconv.AppendInt(b, int64(ms/1000), 10)
	b = append(b, '.', byte('0'+ms/100%10), byte('0'+ms/10%10), byte('0'+ms%10), '\n')
	return b
}
