package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keygate/keygate/verify"
)

// cborOf re-encodes a JSON sample as CBOR, keeping the field order.
func cborOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var in struct {
		Protected map[string]any `json:"protected"`
		Signature string         `json:"signature"`
		Payload   orderedPayload `json:"payload"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	p, _ := cbor.Marshal(in.Payload)
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

// resign recomputes the signature of a JSON sample over its own bytes, as a device that serialised
// the file itself would (e.g. with a float iat, which verify.Sign does not write).
func resign(t *testing.T, body []byte, key string) []byte {
	t.Helper()
	s, err := verify.Parse(body, verify.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	zeros := bytes.Repeat([]byte("0"), 64)
	out := bytes.Replace(body, []byte(s.Signature), zeros, 1)
	m := hmac.New(sha256.New, []byte(key))
	m.Write(out)
	i := bytes.Index(out, zeros)
	hex.Encode(out[i:i+64], m.Sum(nil))
	return out
}

// orderedPayload keeps the platform's field order (device_name first, values last) in CBOR.
type orderedPayload struct {
	DeviceName string `json:"device_name" cbor:"device_name"`
	DeviceType string `json:"device_type" cbor:"device_type"`
	IntervalMs any    `json:"interval_ms" cbor:"interval_ms"`
	Sensors    any    `json:"sensors" cbor:"sensors"`
	Values     any    `json:"values" cbor:"values"`
}
