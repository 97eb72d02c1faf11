package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sealer encrypts secrets that must be usable later (HMAC keys, the development API key) with
// AES-256-GCM under the master key. A nil *Sealer stores them in plain text: keygate warns loudly at
// start when that is the case.
type Sealer struct {
	aead cipher.AEAD
}

// ErrSealed: a stored secret is encrypted and no (or another) master key is configured.
var ErrSealed = errors.New("stored secret is encrypted: set KEYGATE_MASTER_KEY to the key it was written with")

const (
	sealedPrefix = "gcm1:"
	plainPrefix  = "plain:"
)

// ParseMasterKey reads a 32-byte key written as 64 hex characters or as base64 (standard or URL
// alphabet, padded or not).
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("master key decodes to %d bytes, want 32", len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("master key must be 32 bytes written as 64 hex characters or base64")
}

// NewSealer builds a Sealer from a 32-byte master key.
func NewSealer(master []byte) (*Sealer, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("master key: want 32 bytes, got %d", len(master))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Encrypted reports whether secrets are encrypted at rest.
func (s *Sealer) Encrypted() bool { return s != nil }

// aad binds a sealed secret to the record it belongs to, so a ciphertext copied onto another record
// does not open.
func aad(kind string, projectID, id int64) []byte {
	return []byte(kind + ":" + strconv.FormatInt(projectID, 10) + ":" + strconv.FormatInt(id, 10))
}

// Seal returns the stored form of a secret.
func (s *Sealer) Seal(secret string, kind string, projectID, id int64) (string, error) {
	if s == nil {
		return plainPrefix + secret, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(secret), aad(kind, projectID, id))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open returns the secret from its stored form.
func (s *Sealer) Open(stored string, kind string, projectID, id int64) (string, error) {
	switch {
	case strings.HasPrefix(stored, plainPrefix):
		return stored[len(plainPrefix):], nil
	case strings.HasPrefix(stored, sealedPrefix):
		if s == nil {
			return "", ErrSealed
		}
		raw, err := base64.RawStdEncoding.DecodeString(stored[len(sealedPrefix):])
		if err != nil || len(raw) < s.aead.NonceSize() {
			return "", fmt.Errorf("open sealed secret: corrupt record")
		}
		ns := s.aead.NonceSize()
		pt, err := s.aead.Open(nil, raw[:ns], raw[ns:], aad(kind, projectID, id))
		if err != nil {
			return "", ErrSealed
		}
		return string(pt), nil
	case stored == "":
		return "", nil
	}
	return "", fmt.Errorf("open sealed secret: unknown format")
}
