package redact

import (
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	hex := strings.Repeat("ab12", 16)
	tests := []struct{ in, want string }{
		{"/v1/api/1/raw-data", "/v1/api/1/raw-data"},
		{"/v1/api/1/apikeys/ei_" + hex, "/v1/api/1/apikeys/ei_[redacted]"},
		{"/v1/api/1/ei_" + hex + "/x", "/v1/api/1/ei_[redacted]/x"},
		{"/ei_my-own-caller-supplied-key-123/x/ei_" + hex, "/ei_[redacted]/x/ei_[redacted]"},
		{"/v1/api/1/xei_" + hex, "/v1/api/1/xei_[redacted]"},
		{"/v1/api/1/ei_short", "/v1/api/1/ei_short"},
		{"/v1/api/1/ei_", "/v1/api/1/ei_"},
		{"/a/ei_ei_" + hex, "/a/ei_[redacted]"},
		{"/ei_12345678?x", "/ei_[redacted]?x"},
	}
	for _, tt := range tests {
		if got := Path(tt.in); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := string(AppendPath([]byte("p="), tt.in)); got != "p="+tt.want {
			t.Errorf("AppendPath(%q) = %q", tt.in, got)
		}
	}
}

func TestPathDoesNotAllocateWithoutKeys(t *testing.T) {
	p := "/v1/api/1/raw-data/5/rename"
	if n := testing.AllocsPerRun(100, func() { _ = Path(p) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
