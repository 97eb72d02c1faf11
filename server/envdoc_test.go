package server

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestConfigErrorNamesVariable: a bad value names its variable and the expected form, never the Go
// field or type.
func TestConfigErrorNamesVariable(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"KEYGATE_CACHE_TTL", "30", "KEYGATE_CACHE_TTL: want a duration with a unit, such as 30s"},
		{"KEYGATE_CACHE_SIZE", "many", "KEYGATE_CACHE_SIZE: want an integer"},
		{"KEYGATE_STRIP_API_KEY", "yes please", "KEYGATE_STRIP_API_KEY: want true or false"},
		{"KEYGATE_MAX_BODY", "huge", "KEYGATE_MAX_BODY: want a size such as 100MB"},
		{"KEYGATE_LIMIT_DEVICE", "fast", "KEYGATE_LIMIT_DEVICE: want a rate limit"},
		{"KEYGATE_TRUSTED_PROXIES", "10.0.0.0/8,nope", "KEYGATE_TRUSTED_PROXIES: want a comma-separated list of CIDRs"},
		{"KEYGATE_AUDIT_RETENTION", "forever", "KEYGATE_AUDIT_RETENTION: want a duration such as 90d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			_, err := LoadDefaults()
			var ce ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err %v, want a ConfigError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, `got "`+tt.value+`"`) {
				t.Errorf("%q lacks %q and the value", msg, tt.want)
			}
			if strings.Contains(msg, "parse error on field") || strings.Contains(msg, "time.Duration") {
				t.Errorf("%q names the Go field or type", msg)
			}
		})
	}
}

func TestUnknownVariables(t *testing.T) {
	got := UnknownVariables([]string{
		"KEYGATE_STUDIO_UPSTREM=http://x", "KEYGATE_STUDIO_UPSTREAM=http://y", "PATH=/bin",
		"KEYGATE_CACHETTL=3s", "KEYGATE_TEST_MAIN=1",
	})
	want := [][2]string{{"KEYGATE_CACHETTL", "KEYGATE_CACHE_TTL"}, {"KEYGATE_STUDIO_UPSTREM", "KEYGATE_STUDIO_UPSTREAM"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got[i], want[i])
		}
	}
}

// TestUsageListsEveryVariable: `keygate serve --help` has every variable, its default and its
// meaning (from the doc comments).
func TestUsageListsEveryVariable(t *testing.T) {
	var b bytes.Buffer
	WriteUsage(&b)
	out := b.String()
	for name := range configEnvNames() {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("%s missing from the usage", name)
		}
	}
	for _, v := range Variables() {
		if v.Doc == "" {
			t.Errorf("%s (%s) has no doc comment", v.Name, v.Field)
		}
	}
	for _, want := range []string{"KEYGATE_CACHE_TTL  default 30s", "bounds how stale", "KEYGATE_REDIS_URL  default (unset)"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("usage lacks %q", want)
		}
	}
}
