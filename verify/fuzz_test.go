package verify

import (
	"bytes"
	"testing"
)

// The fuzz targets check that hostile input never panics, never reads out of bounds, and that
// whatever parses has a signature offset that lies inside the body.

// checkParse: whatever parses as signed has its signature offset inside the body, pointing at the
// signature, and nothing changes the body.
func checkParse(t *testing.T, body []byte, f Format) {
	t.Helper()
	orig := bytes.Clone(body)
	s, err := Parse(body, f)
	if err == nil && s.Signed() {
		if s.sigOff < 0 || s.sigOff+sigLen > len(body) || string(body[s.sigOff:s.sigOff+sigLen]) != s.Signature {
			t.Fatalf("signature offset %d does not point at the signature", s.sigOff)
		}
		_, _ = s.Verify(body, [][]byte{[]byte("k")})
	}
	if !bytes.Equal(orig, body) {
		t.Fatal("Parse changed the body")
	}
	// ParseFull's fast path and its whole-file walk name the same device whenever both accept.
	if full, err := ParseFull(body, f); err == nil {
		if walked, werr := parse(body, f, true); werr == nil && walked.DeviceName != full.DeviceName {
			t.Fatalf("ParseFull says device %q, the whole walk %q", full.DeviceName, walked.DeviceName)
		}
	}
	if !bytes.Equal(orig, body) {
		t.Fatal("ParseFull changed the body")
	}
}

func addSeeds(f *testing.F, names ...string) {
	f.Helper()
	for _, n := range names {
		f.Add(vector(f, n))
	}
}

func FuzzParseJSON(f *testing.F) {
	addSeeds(f, "compact.json", "spaced.json", "tampered.json")
	f.Add([]byte(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{}}`))
	f.Add([]byte(`{"payload":{"values":[[1]]},"protected":{"ver":"v1","alg":"HS256"},"signature":"` + string(bytes.Repeat([]byte("a"), 64)) + `"}`))
	f.Add([]byte(`{"a":"\"","b":[{"c":"\\"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkParse(t, body, FormatJSON) })
}

func FuzzParseCBOR(f *testing.F) {
	addSeeds(f, "docs-example.cbor")
	doc := vector(f, "docs-example.cbor")
	f.Add(doc[:len(doc)-20])
	f.Add([]byte{0xbf, 0x61, 'a', 0x9f, 0xff, 0xff})
	f.Add([]byte{0xa1, 0x63, 'a', 'b', 'c', 0xd8, 0x18, 0x41, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) { checkParse(t, body, FormatCBOR) })
}
