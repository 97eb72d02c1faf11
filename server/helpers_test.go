package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/keygate/keygate/internal/sampletest"
	"github.com/keygate/keygate/verify"
)

// cborOf re-encodes a JSON sample as CBOR.
func cborOf(t *testing.T, b []byte) []byte { return sampletest.CBOROf(t, b) }

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
