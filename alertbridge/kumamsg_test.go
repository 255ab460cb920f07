package alertbridge

import (
	"strings"
	"testing"
)

// TestKumaSummaryKeepsCount: names too long for Kuma's message are cut, the
// "(+N more)" count is not.
func TestKumaSummaryKeepsCount(t *testing.T) {
	t.Parallel()
	st := newKumaState()
	st.setFiring("fp0", kumaAlert{Name: "PopDown " + strings.Repeat("a", 300)})
	st.setFiring("fp1", kumaAlert{Name: "PopDown b"})
	st.setFiring("fp2", kumaAlert{Name: "PopDown c"})
	_, m := st.summary()
	if len(m) > kumaMsgMax || !strings.HasSuffix(m, "(+2 more)") {
		t.Errorf("summary %q (%d bytes)", m, len(m))
	}
}
