package admin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

func TestTextViews(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	if err := WriteAPIKeys(&b, []APIKeyView{{ID: 7, APIKey: "ei_abc...", Name: "ci", Role: keys.RoleAdmin, IsDevelopmentKey: true, Created: at}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteHMACKeys(&b, []HMACKeyView{{ID: 8, HMACKey: "s3cr3t", Name: "cam", Created: at, Devices: []string{"cam-1", "cam-2"}}, {ID: 9, Name: "any"}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSettings(&b, 1, keys.ProjectSettings{RequireSignatures: true, KeyLimits: map[int64]keys.Limit{7: {Rate: 5, Period: time.Second, Burst: 5}}}); err != nil {
		t.Fatal(err)
	}
	WriteDevKeys(&b, nil, &keys.HMACKey{ID: 8, Name: "cam", Secret: "s3cr3t"})
	out := b.String()
	for _, want := range []string{
		"ID  NAME  ROLE", "7   ci    admin  yes  ei_abc...  2026-01-02T03:04:05Z  never",
		"cam-1,cam-2", "any ", "require signatures: true", "rate limit (key 7): 5/s",
		`HMAC key: s3cr3t  (id 8, "cam")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "API key:") {
		t.Errorf("a missing development API key printed a line:\n%s", out)
	}
}
