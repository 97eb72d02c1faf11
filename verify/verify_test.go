package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keygate/keygate/internal/sampletest"
)

const vectorKey = "fed53116f20684c067774ebf9e7bcbdc"

func vector(t testing.TB, name string) []byte {
	t.Helper()
	// The test vectors of docs/protocol.md §5.3.
	b, err := os.ReadFile(filepath.Join("testdata", "signed", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSharedVectors(t *testing.T) {
	tests := []struct {
		file   string
		format Format
		valid  bool
	}{
		{"docs-example.cbor", FormatCBOR, true},
		{"compact.json", FormatJSON, true},
		{"spaced.json", FormatJSON, true},
		{"tampered.json", FormatJSON, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := vector(t, tt.file)
			orig := bytes.Clone(body)
			s, err := Parse(body, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			wantIAT := 1564128599.0
			if tt.format == FormatCBOR {
				wantIAT = 1564138813
			}
			if s.Alg != AlgHS256 || !s.HasIAT || s.IAT != wantIAT || s.DeviceName != "ac:87:a3:0a:2d:1b" || s.DeviceType != "DISCO-L475VG-IOT01A" {
				t.Errorf("parsed %+v", s)
			}
			_, err = s.Verify(body, [][]byte{[]byte("wrong"), []byte(vectorKey)})
			if tt.valid && err != nil {
				t.Errorf("valid vector: %v", err)
			}
			if !tt.valid && !errors.Is(err, ErrBadSignature) {
				t.Errorf("tampered vector: %v, want ErrBadSignature", err)
			}
			if !bytes.Equal(body, orig) {
				t.Error("verification changed the body")
			}
		})
	}
}

func TestWrongKeyAndKeyOrder(t *testing.T) {
	body := vector(t, "compact.json")
	s, _ := Parse(body, FormatJSON)
	if _, err := s.Verify(body, [][]byte{[]byte("0")}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	if i, err := s.Verify(body, [][]byte{[]byte("a"), []byte("b"), []byte(vectorKey)}); err != nil || i != 2 {
		t.Errorf("rotation: key %d, %v", i, err)
	}
	if _, err := s.Verify(body, nil); !errors.Is(err, ErrBadSignature) {
		t.Errorf("no keys: %v", err)
	}
}

const payloadJSON = `{"device_name":"dev-1","device_type":"TEST","interval_ms":10,"sensors":[{"name":"accX","units":"m/s2"}],"values":[[1.5],[2],[-3.25e2]]}`

func TestSignVerifyRoundTrip(t *testing.T) {
	unsigned := []byte(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":` + payloadJSON + `}`)
	for _, tt := range []struct {
		name string
		key  string
		o    SignOptions
	}{
		{"with iat", vectorKey, SignOptions{HasIAT: true, IAT: 1700000000}},
		{"without iat", vectorKey, SignOptions{}},
		{"key 0 (clients without a development HMAC key)", "0", SignOptions{HasIAT: true, IAT: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []Format{FormatJSON, FormatCBOR} {
				in := unsigned
				if f == FormatCBOR {
					var err error
					if in, err = Sign(unsigned, FormatJSON, []byte("x"), SignOptions{}); err != nil {
						t.Fatal(err)
					}
					in = sampletest.CBOROf(t, in)
				}
				signed, err := Sign(in, f, []byte(tt.key), tt.o)
				if err != nil {
					t.Fatal(err)
				}
				s, err := Parse(signed, f)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if s.HasIAT != tt.o.HasIAT || (s.HasIAT && s.IAT != float64(tt.o.IAT)) || s.DeviceName != "dev-1" {
					t.Errorf("%s: parsed %+v", f, s)
				}
				if _, err := s.Verify(signed, [][]byte{[]byte(tt.key)}); err != nil {
					t.Errorf("%s: %v", f, err)
				}
				// An independent check of the algorithm: HMAC over the bytes with zeros in place.
				zeroed := bytes.Replace(signed, []byte(s.Signature), zeros, 1)
				m := hmac.New(sha256.New, []byte(tt.key))
				m.Write(zeroed)
				mac := s.MAC(signed, []byte(tt.key))
				if got := m.Sum(nil); !hmac.Equal(got, mac[:]) {
					t.Errorf("%s: MAC differs from HMAC over the zeroed bytes", f)
				}
				// Flip one byte anywhere in the payload: verification fails.
				tampered := bytes.Clone(signed)
				tampered[len(tampered)-3] ^= 1
				if ts, err := Parse(tampered, f); err == nil {
					if _, err := ts.Verify(tampered, [][]byte{[]byte(tt.key)}); err == nil {
						t.Errorf("%s: tampered sample verifies", f)
					}
				}
			}
		})
	}
}

func TestParseJSONForms(t *testing.T) {
	sig := strings.Repeat("a", 64)
	tests := []struct {
		name string
		body string
		err  error
		iat  float64
	}{
		{"float iat", `{"protected":{"ver":"v1","alg":"HS256","iat":1700000000.25},"signature":"` + sig + `","payload":{}}`, nil, 1700000000.25},
		{"alg none", `{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{}}`, nil, 0},
		{"payload first", `{"payload":` + payloadJSON + `,"protected":{"ver":"v1","alg":"HS256"},"signature":"` + sig + `"}`, nil, 0},
		{"truncated", `{"protected":{"ver":"v1","alg":"HS256"`, ErrMalformed, 0},
		{"not an object", `[1,2]`, ErrMalformed, 0},
		{"no protected", `{"a":1,"b":[1,2,{"c":"d"}]}`, ErrNotSample, 0},
		{"bad ver", `{"protected":{"ver":"v2","alg":"none"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"bad alg", `{"protected":{"ver":"v1","alg":"RS256"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"short signature", `{"protected":{"ver":"v1","alg":"HS256"},"signature":"abc","payload":{}}`, ErrMalformed, 0},
		{"uppercase signature", `{"protected":{"ver":"v1","alg":"HS256"},"signature":"` + strings.Repeat("A", 64) + `","payload":{}}`, ErrMalformed, 0},
		{"escaped signature", `{"protected":{"ver":"v1","alg":"HS256"},"signature":"\u0061` + strings.Repeat("a", 63) + `","payload":{}}`, ErrMalformed, 0},
		{"duplicate protected", `{"protected":{"ver":"v1","alg":"none"},"protected":{"ver":"v1","alg":"HS256"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"deep nesting", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, ErrMalformed, 0},
		{"string iat", `{"protected":{"ver":"v1","alg":"none","iat":"now"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"numeric string iat", `{"protected":{"ver":"v1","alg":"none","iat":"1700000000"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"null iat", `{"protected":{"ver":"v1","alg":"none","iat":null},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"boolean iat", `{"protected":{"ver":"v1","alg":"none","iat":true},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"array iat", `{"protected":{"ver":"v1","alg":"none","iat":[1700000000]},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"iat with a plus sign", `{"protected":{"ver":"v1","alg":"none","iat":+1700000000},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"iat with a leading zero", `{"protected":{"ver":"v1","alg":"none","iat":01700000000},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"iat out of range", `{"protected":{"ver":"v1","alg":"none","iat":1e400},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"integer iat", `{"protected":{"ver":"v1","alg":"none","iat":1700000000},"signature":"00","payload":{}}`, nil, 1700000000},
		{"exponent iat", `{"protected":{"ver":"v1","alg":"none","iat":1.7E9},"signature":"00","payload":{}}`, nil, 1700000000},
		{"duplicate alg", `{"protected":{"ver":"v1","alg":"none","alg":"HS256"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"duplicate iat", `{"protected":{"ver":"v1","alg":"none","iat":1,"iat":2},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"case variant ALG", `{"protected":{"ver":"v1","alg":"none","ALG":"HS256"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"case variant Iat alone", `{"protected":{"ver":"v1","alg":"none","Iat":1},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"number ver", `{"protected":{"ver":1,"alg":"none"},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"invalid JSON inside protected", `{"protected":{"ver":"v1","alg":"none","x":tru},"signature":"00","payload":{}}`, ErrMalformed, 0},
		{"unknown protected field kept", `{"protected":{"ver":"v1","alg":"none","kid":"x"},"signature":"00","payload":{}}`, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.body), FormatJSON)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && s.IAT != tt.iat {
				t.Errorf("iat = %v, want %v", s.IAT, tt.iat)
			}
		})
	}
}

func TestParseCBORForms(t *testing.T) {
	doc := vector(t, "docs-example.cbor")
	// The binary variant: the header's values array left open, raw samples after it.
	if _, err := Parse(doc[:len(doc)-20], FormatCBOR); err != nil {
		t.Errorf("header with raw samples after values: %v", err)
	}
	for _, n := range []int{0, 1, 10, 40, 60} {
		if _, err := Parse(doc[:n], FormatCBOR); err == nil {
			t.Errorf("truncated to %d bytes: parsed", n)
		}
	}
	// A signature written as a 64-byte text string with a 2-byte length (0x79 0x00 0x40) is not
	// where signers put it: refused.
	i := bytes.Index(doc, []byte{0x78, 0x40})
	odd := append(append(append([]byte{}, doc[:i]...), 0x79, 0x00, 0x40), doc[i+2:]...)
	if _, err := Parse(odd, FormatCBOR); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-canonical signature length: %v", err)
	}
	// Absurd declared lengths are refused without allocating.
	if _, err := Parse([]byte{0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, FormatCBOR); err == nil {
		t.Error("2^64-pair map parsed")
	}
	if _, err := Parse([]byte{0x61, 'a'}, FormatCBOR); !errors.Is(err, ErrNotSample) {
		t.Errorf("a text string: %v", err)
	}
}

// TestParseCBORProtected: the protected map is read as strictly as JSON's: iat a number, no field
// twice, no case variant.
func TestParseCBORProtected(t *testing.T) {
	enc := func(kv ...any) []byte { // a map in the given order, duplicates kept
		b := []byte{0xa0 | byte(len(kv)/2)}
		for _, x := range kv {
			if raw, ok := x.(cbor.RawMessage); ok {
				b = append(b, raw...)
				continue
			}
			e, err := cbor.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, e...)
		}
		return b
	}
	sample := func(prot []byte) []byte {
		return enc("protected", cbor.RawMessage(prot), "signature", "00", "payload", map[string]any{"values": []any{}})
	}
	tests := []struct {
		name string
		prot []byte
		ok   bool
		iat  float64
	}{
		{"integer iat", enc("ver", "v1", "alg", "none", "iat", 1700000000), true, 1700000000},
		{"float iat", enc("ver", "v1", "alg", "none", "iat", 1700000000.5), true, 1700000000.5},
		{"no iat", enc("ver", "v1", "alg", "none"), true, 0},
		{"string iat", enc("ver", "v1", "alg", "none", "iat", "1700000000"), false, 0},
		{"byte-string iat", enc("ver", "v1", "alg", "none", "iat", []byte("1700000000")), false, 0},
		{"tagged time iat", enc("ver", "v1", "alg", "none", "iat", cbor.Tag{Number: 1, Content: 1700000000}), false, 0},
		{"null iat", enc("ver", "v1", "alg", "none", "iat", nil), false, 0},
		{"duplicate alg", enc("ver", "v1", "alg", "none", "alg", "HS256"), false, 0},
		{"case variant ALG", enc("ver", "v1", "alg", "none", "ALG", "HS256"), false, 0},
		{"case variant Ver alone", enc("Ver", "v1", "alg", "none"), false, 0},
		{"byte-string alg", enc("ver", "v1", "alg", []byte("none")), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(sample(tt.prot), FormatCBOR)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && s.IAT != tt.iat {
				t.Errorf("iat %v, want %v", s.IAT, tt.iat)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("err %v is not ErrMalformed", err)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		ct, name string
		body     []byte
		want     Format
	}{
		{"application/json", "", []byte("{}"), FormatJSON},
		{"application/json; charset=utf-8", "", []byte("{}"), FormatJSON},
		{"application/cbor", "", []byte{0xa0}, FormatCBOR},
		{"application/octet-stream", "", []byte{0xa3, 1}, FormatCBOR},
		{"application/octet-stream", "", []byte("RIFF...."), FormatUnknown},
		{"", "sample.json", []byte("{}"), FormatJSON},
		{"", "sample.cbor", []byte{0xa0}, FormatCBOR},
		{"text/csv", "x.csv", []byte("a,b"), FormatUnknown},
		{"image/jpeg", "x.jpg", []byte{0xff, 0xd8}, FormatUnknown},
		{"audio/wav", "x.wav", []byte("RIFF"), FormatUnknown},
	}
	for _, tt := range tests {
		if got := DetectFormat(tt.ct, tt.name, tt.body); got != tt.want {
			t.Errorf("DetectFormat(%q, %q) = %v, want %v", tt.ct, tt.name, got, tt.want)
		}
	}
}
