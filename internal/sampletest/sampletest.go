// Package sampletest builds data acquisition samples for tests.
package sampletest

import (
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// orderedPayload keeps the platform's field order (device_name first, values last) in CBOR.
type orderedPayload struct {
	DeviceName string `json:"device_name" cbor:"device_name"`
	DeviceType string `json:"device_type" cbor:"device_type"`
	IntervalMs any    `json:"interval_ms" cbor:"interval_ms"`
	Sensors    any    `json:"sensors" cbor:"sensors"`
	Values     any    `json:"values" cbor:"values"`
}

// CBOROf re-encodes a JSON sample as CBOR with the fields in the order signers write them.
func CBOROf(t testing.TB, b []byte) []byte {
	t.Helper()
	var in struct {
		Protected map[string]any `json:"protected"`
		Signature string         `json:"signature"`
		Payload   orderedPayload `json:"payload"`
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
