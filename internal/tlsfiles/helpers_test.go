package tlsfiles

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
)

func parse(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return nil, errors.New("no PEM")
	}
	return x509.ParseCertificate(b.Bytes)
}

func x509VerifyOptions(p *Pool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: p.Roots(), DNSName: "localhost"}
}
