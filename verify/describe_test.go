package verify

import (
	"strings"
	"testing"
	"time"
)

func TestChooseFormat(t *testing.T) {
	tests := []struct {
		name, file, named string
		body              string
		want              Format
		wantErr           string
	}{
		{"named wins over the extension", "a.json", "cbor", "{}", FormatCBOR, ""},
		{"extension", "a.cbor", "", "{}", FormatCBOR, ""},
		{"first byte", "sample", "", `{"protected":{}}`, FormatJSON, ""},
		{"bad name", "a.json", "xml", "{}", FormatUnknown, "--format"},
		{"undecidable", "sample", "", "xyz", FormatUnknown, "cannot tell"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ChooseFormat(tc.file, []byte(tc.body), tc.named)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || f != tc.want {
				t.Fatalf("%v, %v; want %v", f, err, tc.want)
			}
		})
	}
}

func TestVerdictDescribe(t *testing.T) {
	at := time.Unix(1700000000, 0).UTC()
	tests := []struct {
		name string
		v    Verdict
		ok   bool
		want string
	}{
		{"unsigned", Verdict{Alg: "none"}, false, "f: unsigned (alg none)"},
		{"invalid", Verdict{Signed: true, Alg: "HS256", Key: -1}, false, "INVALID: the signature matches none of the 2 key(s)"},
		{"stale", Verdict{Signed: true, Valid: true, Key: 1, SignedAt: at, Stale: true}, false, "valid signature (key 2) but STALE: signed at 2023-11-14T22:13:20Z is outside 1m0s of now"},
		{"valid", Verdict{Signed: true, Valid: true, Key: 0, Device: "d1"}, true, `f: valid (json, key 1, no iat, device "d1")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.Describe("f", FormatJSON, 2, time.Minute); !strings.Contains(got, tc.want) {
				t.Errorf("%q, want it to contain %q", got, tc.want)
			}
			if tc.v.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", tc.v.OK(), tc.ok)
			}
		})
	}
}
