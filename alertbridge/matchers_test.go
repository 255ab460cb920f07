package alertbridge

import (
	"testing"

	"github.com/prometheus/alertmanager/matcher/parse"
)

// TestMatchersParseInAlertmanager: the matcher string of the silence form
// link, for legacy and UTF-8 label names (Prometheus 3) and values with
// quotes, backslashes and non-ASCII text, is read back by Alertmanager's
// own matcher parser as exactly the group's labels.
func TestMatchersParseInAlertmanager(t *testing.T) {
	t.Parallel()
	for _, labels := range []map[string]string{
		{"alertname": "PopDown", "region": "eu-west"},
		{"alertname": "PopDown", "service.name": "vault", "k8s.pod": "a-1"},
		{"alertname": "x", "dé": "é", "9lives": "n", "with space": `q"uo\te`},
		{"_under": "", "a1": "a,b}{="},
	} {
		s := matchers(labels)
		ms, err := parse.Matchers(s)
		if err != nil {
			t.Errorf("%s: Alertmanager cannot parse it: %v", s, err)
			continue
		}
		if len(ms) != len(labels) {
			t.Errorf("%s: %d matchers, want %d", s, len(ms), len(labels))
		}
		for _, m := range ms {
			if v, ok := labels[m.Name]; !ok || v != m.Value || m.Type.String() != "=" {
				t.Errorf("%s: matcher %s does not match the label set %v", s, m, labels)
			}
		}
	}
	if got := matchers(map[string]string{"alertname": "PopDown", "region": "eu-west"}); got != `{alertname="PopDown", region="eu-west"}` {
		t.Errorf("legacy names are written unquoted, as every Alertmanager reads them: %s", got)
	}
}
