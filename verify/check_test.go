package verify

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	unsigned := []byte(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":` + payloadJSON + `}`)
	now := time.Unix(1700000000, 0)
	signed := func(o SignOptions) []byte {
		t.Helper()
		b, err := Sign(unsigned, FormatJSON, []byte(vectorKey), o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fresh := signed(SignOptions{HasIAT: true, IAT: now.Unix() - 60})
	for _, tc := range []struct {
		name string
		body []byte
		keys []string
		skew time.Duration
		want Verdict
	}{
		{"unsigned", unsigned, []string{vectorKey}, 0, Verdict{Alg: "none", Key: -1}},
		{"valid with the second key", fresh, []string{"other", vectorKey}, time.Hour,
			Verdict{Signed: true, Alg: AlgHS256, Valid: true, Key: 1, SignedAt: now.Add(-time.Minute).UTC()}},
		{"invalid", fresh, []string{"other"}, 0, Verdict{Signed: true, Alg: AlgHS256, Key: -1, SignedAt: now.Add(-time.Minute).UTC()}},
		{"stale", fresh, []string{vectorKey}, 30 * time.Second,
			Verdict{Signed: true, Alg: AlgHS256, Valid: true, Key: 0, SignedAt: now.Add(-time.Minute).UTC(), Stale: true}},
		{"no iat is never stale", signed(SignOptions{}), []string{vectorKey}, time.Second, Verdict{Signed: true, Alg: AlgHS256, Valid: true, Key: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := make([][]byte, len(tc.keys))
			for i, k := range tc.keys {
				keys[i] = []byte(k)
			}
			got, err := Check(tc.body, FormatJSON, keys, now, tc.skew)
			got.Device = ""
			if err != nil || got != tc.want {
				t.Errorf("Check = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := Check([]byte(`{"protected":`), FormatJSON, nil, now, 0); err == nil {
		t.Error("a malformed file is not an error")
	}
}
