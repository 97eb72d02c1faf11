package verify

import (
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// jsonToCBOR re-encodes a JSON sample as CBOR with the field order kept (for tests).
func jsonToCBOR(t testing.TB, b []byte) []byte {
	t.Helper()
	var in struct {
		Protected map[string]any `json:"protected"`
		Signature string         `json:"signature"`
		Payload   map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	p, err := cbor.Marshal(in.Payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cbor.Marshal(struct {
		Protected map[string]any  `cbor:"protected"`
		Signature string          `cbor:"signature"`
		Payload   cbor.RawMessage `cbor:"payload"`
	}{in.Protected, in.Signature, p})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
