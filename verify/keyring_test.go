package verify

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keygate/keygate/internal/sampletest"
)

// deviceSample signs a small JSON sample of device with key.
func deviceSample(t testing.TB, key, device string) []byte {
	t.Helper()
	raw := fmt.Sprintf(`{"protected":{"ver":"v1","alg":"HS256"},"signature":"","payload":{"device_name":%q,"device_type":"T","interval_ms":10,"sensors":[{"name":"a","units":"m"}],"values":[[1],[2]]}}`, device)
	out, err := Sign([]byte(raw), FormatJSON, []byte(key), SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKeyRingVerify(t *testing.T) {
	ring := NewKeyRing([]RingKey{
		{ID: 1, Secret: []byte("fleet"), Devices: nil},
		{ID: 2, Secret: []byte("key-a"), Devices: []string{"dev-a"}},
		{ID: 3, Secret: []byte("key-line3"), Devices: []string{"line-3-*"}},
		{ID: 4, Secret: []byte("key-cams"), Devices: []string{"cam-1", "cam-2", "cam-*"}},
		{ID: 5, Secret: []byte("key-line"), Devices: []string{"line-*"}},
	})
	unboundOnly := NewKeyRing([]RingKey{{ID: 9, Secret: []byte("fleet")}})
	tests := []struct {
		name         string
		ring         *KeyRing
		key, device  string
		requireBound bool
		wantID       int64
		wantBound    bool
		wantErr      error
	}{
		{"bound key, its device", ring, "key-a", "dev-a", false, 2, true, nil},
		{"bound key, another device", ring, "key-a", "dev-b", false, 0, false, ErrWrongDevice},
		{"bound key, device with its name as prefix", ring, "key-a", "dev-a2", false, 0, false, ErrWrongDevice},
		{"bound key, no device name", ring, "key-a", "", false, 0, false, ErrWrongDevice},
		{"prefix key, matching device", ring, "key-line3", "line-3-07", false, 3, true, nil},
		{"prefix key, empty rest", ring, "key-line3", "line-3-", false, 3, true, nil},
		{"prefix key, other line", ring, "key-line3", "line-4-01", false, 0, false, ErrWrongDevice},
		{"shorter prefix key, same device", ring, "key-line", "line-3-07", false, 5, true, nil},
		{"key with exact and prefix entries", ring, "key-cams", "cam-9", false, 4, true, nil},
		{"unbound key, any device", ring, "fleet", "anything", false, 1, false, nil},
		{"unbound key, required bound", ring, "fleet", "anything", true, 1, false, ErrUnboundKey},
		{"bound key, required bound", ring, "key-a", "dev-a", true, 2, true, nil},
		{"unknown key", ring, "nope", "dev-a", false, 0, false, ErrWrongDevice},
		{"unknown key, no bound keys", unboundOnly, "nope", "dev-a", false, 0, false, ErrBadSignature},
		{"unbound-only project, required bound", unboundOnly, "fleet", "dev-a", true, 9, false, ErrUnboundKey},
		{"no keys at all", nil, "fleet", "dev-a", false, 0, false, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := deviceSample(t, tc.key, tc.device)
			s, err := ParseFull(body, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			m, err := tc.ring.Verify(&s, body, tc.requireBound)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if m.KeyID != tc.wantID || m.Bound != tc.wantBound {
				t.Errorf("match = %+v, want key %d bound=%v", m, tc.wantID, tc.wantBound)
			}
		})
	}
	if !ring.Bound() || unboundOnly.Bound() || ring.Len() != 5 {
		t.Errorf("Bound/Len = %v %v %d", ring.Bound(), unboundOnly.Bound(), ring.Len())
	}
}

// TestParseFullDeviceName: where parsers could disagree on the device, ParseFull refuses.
func TestParseFullDeviceName(t *testing.T) {
	head := `{"protected":{"ver":"v1","alg":"HS256"},"signature":"` + string(zeros) + `","payload":`
	tests := []struct {
		name      string
		raw       string
		cbor      bool
		wantDev   string
		wantFull  bool // ParseFull accepts
		wantQuick bool // Parse accepts
	}{
		{"plain", head + `{"device_name":"dev-a","values":[[1]]}}`, false, "dev-a", true, true},
		{"device after values", head + `{"values":[[1]],"device_name":"dev-b"}}`, false, "dev-b", true, true},
		{"duplicate device before values", head + `{"device_name":"dev-a","device_name":"dev-b","values":[[1]]}}`, false, "", false, false},
		{"duplicate device across values", head + `{"device_name":"dev-a","values":[[1]],"device_name":"dev-b"}}`, false, "", false, true},
		{"escaped key after values", head + `{"device_name":"dev-a","values":[[1]],"device_n\u0061me":"dev-b"}}`, false, "", false, true},
		{"second payload", head + `{"device_name":"dev-a","values":[[1]]},"payload":{"device_name":"dev-b","values":[]}}`, false, "", false, true},
		{"cbor plain", head + `{"device_name":"dev-a","device_type":"T","interval_ms":1,"sensors":[],"values":[[1]]}}`, true, "dev-a", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bytes are taken as written (Sign would tidy duplicates away); the MAC is irrelevant
			// to parsing.
			format, body := FormatJSON, []byte(tc.raw)
			if tc.cbor {
				signed, err := Sign(sampletest.CBOROf(t, body), FormatCBOR, []byte("k"), SignOptions{})
				if err != nil {
					t.Fatal(err)
				}
				format, body = FormatCBOR, signed
			}
			_, qerr := Parse(body, format)
			if (qerr == nil) != tc.wantQuick {
				t.Errorf("Parse err = %v, want accepted=%v", qerr, tc.wantQuick)
			}
			s, err := ParseFull(body, format)
			if (err == nil) != tc.wantFull {
				t.Fatalf("ParseFull err = %v, want accepted=%v", err, tc.wantFull)
			}
			if err == nil && s.DeviceName != tc.wantDev {
				t.Errorf("device = %q, want %q", s.DeviceName, tc.wantDev)
			}
		})
	}
}

// BenchmarkKeyRing: a project with 10,000 device keys verifies a sample at the cost of a project
// with one (docs/signatures.md has the numbers).
func BenchmarkKeyRing(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		keys := make([]RingKey, n)
		for i := range keys {
			keys[i] = RingKey{ID: int64(i + 1), Secret: fmt.Appendf(nil, "key-%d", i), Devices: []string{fmt.Sprintf("dev-%d", i)}}
		}
		ring := NewKeyRing(keys)
		last := n - 1
		body := deviceSample(b, fmt.Sprintf("key-%d", last), fmt.Sprintf("dev-%d", last))
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := ParseFull(body, FormatJSON)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ring.Verify(&s, body, true); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What the index saves: trying every key in turn, as verification did before bindings.
		secrets := make([][]byte, n)
		for i, k := range keys {
			secrets[i] = k.Secret
		}
		b.Run(fmt.Sprintf("every-key/keys=%d", n), func(b *testing.B) {
			for b.Loop() {
				s, err := Parse(body, FormatJSON)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Verify(body, secrets); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseFull: what reading the device name the strict way (the whole file, for projects
// with device-bound keys) costs next to Parse, which stops at the values.
func BenchmarkParseFull(b *testing.B) {
	for _, size := range []int{1 << 10, 10 << 20} {
		body := bigSample(b, size)
		for name, parse := range map[string]func([]byte, Format) (Sample, error){"parse": Parse, "parse-full": ParseFull} {
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := parse(body, FormatJSON); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
