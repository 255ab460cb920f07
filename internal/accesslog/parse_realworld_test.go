package accesslog

import "testing"

// TestParseCombinedIntegerIsNoRequestTime: nginx writes $request_time and
// $upstream_response_time with a decimal point, always ("0.004"). A bare
// integer after the user agent is something else: Apache's %D
// (microseconds), %T (whole seconds) or %{ms}T, or nginx's
// $request_length, $connection, $bytes_sent. Read as seconds it would put
// a 120 ms Apache request (%D 120000) at 33 hours; it is no request time,
// and a decimal time after it still is.
func TestParseCombinedIntegerIsNoRequestTime(t *testing.T) {
	t.Parallel()
	const head = `203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5 "-" "Mozilla/5.0"`
	const vhead = `pop.example:443 203.0.113.9 - - [02/Dec/2026:10:00:00 +0100] "GET /x HTTP/1.1" 200 5 "-" "Mozilla/5.0"`
	for line, want := range map[string]float64{
		head + ` 120000`:           -1, // Apache %D
		vhead + ` 120000`:          -1, // vhost_combined %D
		head + ` 2`:                -1, // Apache %T
		head + ` 0`:                -1,
		head + ` 1234 0.004`:       0.004, // $connection $request_time
		head + ` 512 0.004`:        0.004, // $request_length $request_time
		head + ` 512 0.001, 0.002`: -1,
		head + ` 512 0.002 0.004`:  0.004,
		head + ` 0.004 512`:        0.004,
		head + ` rt=2`:             2, // labeled: seconds as written
		head + ` request_time=0`:   0,
		head + ` 0.000`:            0,
	} {
		var r Record
		if err := ParseCombined([]byte(line), &r); err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if want < 0 {
			if r.HasDuration {
				t.Errorf("%q: duration %v, want none", line[len(head)-14:], r.Duration)
			}
			continue
		}
		if !r.HasDuration || r.Duration != want {
			t.Errorf("%q: duration %v/%v, want %v", line[len(head)-14:], r.Duration, r.HasDuration, want)
		}
	}
}
