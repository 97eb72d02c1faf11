package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:6379: connection refused")
	retry := New(http.StatusServiceUnavailable, "unavailable", "key store unavailable, try again shortly", cause)
	retry.RetryAfter = 2
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantError  string
		wantRetry  string
	}{
		{"refusal", New(http.StatusForbidden, "denied", "the Read-only role may not add data", nil), 403, "the Read-only role may not add data", ""},
		{"with retry", retry, 503, "key store unavailable, try again shortly", "2"},
		{"Unavailable: 503 with the one Retry-After", Unavailable("rate limiter unavailable, try again shortly", cause), 503, "rate limiter unavailable, try again shortly", "2"},
		{"TooLarge names the limit", TooLarge(65536), 413, "request body is larger than the limit of 65536 bytes", ""},
		{"wrapped refusal keeps its status", fmt.Errorf("authorize: %w", New(http.StatusUnauthorized, "unauthorized", "unknown API key", nil)), 401, "unknown API key", ""},
		{"any other error is internal", fmt.Errorf("open: %w", fs.ErrPermission), 500, "internal error", ""},
		{"public text with quotes and markup", New(http.StatusBadRequest, "bad_request", `field "name" <b>`, nil), 400, `field "name" <b>`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tc.err)
			if rec.Code != tc.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			h := rec.Header()
			for k, want := range map[string]string{
				"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Retry-After": tc.wantRetry,
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			raw := rec.Body.String()
			if !strings.HasSuffix(raw, "}\n") {
				t.Errorf("body %q does not end in one newline", raw)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(raw), &body); err != nil {
				t.Fatalf("not JSON: %q", raw)
			}
			if len(body) != 2 || body["success"] != false || body["error"] != tc.wantError {
				t.Errorf("body %q, want exactly {success:false, error:%q}", raw, tc.wantError)
			}
			// The cause is for logs only.
			if strings.Contains(raw, "10.0.0.7") || strings.Contains(raw, "permission") {
				t.Errorf("the cause reached the client: %q", raw)
			}
		})
	}
}

func TestErrorWrapsItsCause(t *testing.T) {
	cause := errors.New("redis: connection pool timeout")
	e := New(http.StatusServiceUnavailable, "unavailable", "key store unavailable", cause)
	if !errors.Is(e, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	if got := e.Error(); got != "key store unavailable: redis: connection pool timeout" {
		t.Errorf("Error() = %q", got)
	}
	if got := New(http.StatusNotFound, "not_found", "no route", nil).Error(); got != "no route" {
		t.Errorf("Error() without a cause = %q", got)
	}
	var target *Error
	if !errors.As(fmt.Errorf("ctx: %w", e), &target) || target.Outcome != "unavailable" || target.Status != 503 {
		t.Errorf("errors.As: %+v", target)
	}
}

// TestWriteAllow: a 405 carries its Allow list; other errors carry none.
func TestWriteAllow(t *testing.T) {
	e := MethodNotAllowed("method TRACE is not served", "GET, HEAD")
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{e, []string{"GET, HEAD"}},
		{New(http.StatusNotFound, OutcomeNotFound, "no route", nil), nil},
	} {
		rec := httptest.NewRecorder()
		Write(rec, tc.err)
		if got := rec.Header().Values("Allow"); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%v: Allow %q, want %q", tc.err, got, tc.want)
		}
	}
}
