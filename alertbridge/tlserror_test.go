package alertbridge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTLSFailureIsNotAmbiguous: a request whose TLS handshake failed (an
// expired or untrusted certificate) was never sent. It was classed as
// ambiguous, so once the certificate was fixed every held page went out
// marked "possible repeat: ntfy did not answer the first attempt in time".
func TestTLSFailureIsNotAmbiguous(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/alerts", nil)
	err := do(&http.Client{}, req) // does not trust the test certificate
	var se *sendError
	if !errors.As(err, &se) || !se.retryable {
		t.Fatalf("error %v", err)
	}
	if se.ambiguous {
		t.Errorf("a failed TLS handshake is taken for a request that may have been acted on: %v", err)
	}
}
