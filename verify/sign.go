package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// SignOptions say how to sign.
type SignOptions struct {
	// IAT, when HasIAT, is written as protected.iat (seconds).
	HasIAT bool
	IAT    int64
}

// Sign signs a data acquisition file the way every official signer does: 64 '0' characters in
// signature, serialise once, HMAC-SHA256 over those bytes, lowercase hex written over the zeros.
// The input's payload is kept byte for byte (JSON) or item for item (CBOR).
func Sign(body []byte, f Format, key []byte, o SignOptions) ([]byte, error) {
	var out []byte
	var err error
	switch f {
	case FormatJSON:
		out, err = signJSON(body, o)
	case FormatCBOR:
		out, err = signCBOR(body, o)
	default:
		return nil, fmt.Errorf("sign: unknown format")
	}
	if err != nil {
		return nil, err
	}
	i := bytes.Index(out, zeros)
	if i < 0 {
		return nil, fmt.Errorf("sign: no signature placeholder")
	}
	m := hmac.New(sha256.New, key)
	m.Write(out)
	hex.Encode(out[i:i+sigLen], m.Sum(nil))
	return out, nil
}

func signJSON(body []byte, o SignOptions) ([]byte, error) {
	var in struct {
		Protected map[string]any  `json:"protected"`
		Payload   json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("sign: %w: %v", ErrMalformed, err)
	}
	if len(in.Payload) == 0 {
		return nil, fmt.Errorf("sign: %w: no payload", ErrMalformed)
	}
	var b bytes.Buffer
	b.WriteString(`{"protected":{"ver":"v1","alg":"HS256"`)
	if o.HasIAT {
		fmt.Fprintf(&b, `,"iat":%d`, o.IAT)
	}
	b.WriteString(`},"signature":"` + strings.Repeat("0", sigLen) + `","payload":`)
	var compact bytes.Buffer
	if err := json.Compact(&compact, in.Payload); err != nil {
		return nil, fmt.Errorf("sign: %w: %v", ErrMalformed, err)
	}
	b.Write(compact.Bytes())
	b.WriteByte('}')
	return b.Bytes(), nil
}

type cborProtectedOut struct {
	Ver string `cbor:"ver"`
	Alg string `cbor:"alg"`
	IAT *int64 `cbor:"iat,omitempty"`
}

type cborSample struct {
	Protected cborProtectedOut `cbor:"protected"`
	Signature string           `cbor:"signature"`
	Payload   cbor.RawMessage  `cbor:"payload"`
}

func signCBOR(body []byte, o SignOptions) ([]byte, error) {
	var in struct {
		Payload cbor.RawMessage `cbor:"payload"`
	}
	if err := decModeLarge.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("sign: %w: %v", ErrMalformed, err)
	}
	if len(in.Payload) == 0 {
		return nil, fmt.Errorf("sign: %w: no payload", ErrMalformed)
	}
	s := cborSample{Protected: cborProtectedOut{Ver: "v1", Alg: AlgHS256}, Signature: strings.Repeat("0", sigLen), Payload: in.Payload}
	if o.HasIAT {
		iat := o.IAT
		s.Protected.IAT = &iat
	}
	return cbor.Marshal(s)
}

// decModeLarge decodes whole files for signing (a local, trusted operation).
var decModeLarge = func() cbor.DecMode {
	dm, err := cbor.DecOptions{MaxArrayElements: 1 << 26, MaxMapPairs: 1 << 16, MaxNestedLevels: 32}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()
