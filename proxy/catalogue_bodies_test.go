package proxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/policy"
)

// signRaw signs a sample exactly as written: body holds 64 '0' characters where the signature
// goes; they are replaced by the HMAC of the whole body (whatever else it says, so malformed
// headers can be signed validly).
func signRaw(t *testing.T, body []byte, key string) []byte {
	t.Helper()
	zeros := []byte(strings.Repeat("0", 64))
	i := bytes.Index(body, zeros)
	if i < 0 {
		t.Fatal("no signature placeholder")
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	out := bytes.Clone(body)
	hex.Encode(out[i:i+64], m.Sum(nil))
	return out
}

// jsonSampleWith is a sample whose protected header is prot (signature placeholder in place).
func jsonSampleWith(prot string) []byte {
	return []byte(`{"protected":` + prot + `,"signature":"` + strings.Repeat("0", 64) + `","payload":{"device_name":"d1","device_type":"T","interval_ms":1,"sensors":[],"values":[]}}`)
}

// cborSampleWith is the CBOR twin: prot is the protected map's encoding.
func cborSampleWith(t *testing.T, prot []byte) []byte {
	t.Helper()
	b := []byte{0xa3}
	for _, x := range []any{"protected", cbor.RawMessage(prot), "signature", strings.Repeat("0", 64), "payload", map[string]any{"device_type": "T", "values": []any{}}} {
		e, err := cbor.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, e...)
	}
	return b
}

// multipartWith builds a /files body: the given part header block over a forged sample (signed
// with a key project 1 does not have), then a well-formed CSV part.
func multipartWith(hdr string) string {
	forged := `{"protected":{"ver":"v1","alg":"HS256"},"signature":"` + strings.Repeat("ab", 32) + `","payload":{"device_type":"T","values":[]}}`
	return "--B\r\n" + hdr + "\r\n\r\n" + forged + "\r\n--B\r\nContent-Disposition: form-data; name=\"data\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n--B--\r\n"
}

// TestCatalogueBodies is issue #11's body classes: multipart parts two parsers read differently,
// protected headers (iat) read two ways, and bodies over the cap, refused before anything is
// forwarded. (Slow bodies, the body deadline, replay marks after a hang-up and ambiguous hellos
// need sequences or websockets: body_test.go and hello_test.go.)
func TestCatalogueBodies(t *testing.T) {
	var cases []catalogueCase
	add := func(c ...catalogueCase) { cases = append(cases, c...) }

	files := func(name, hdr string) catalogueCase {
		return catalogueCase{name: "multipart: " + name, face: policy.FaceIngestion, method: "POST", target: "/api/training/files", key: "ingest1",
			header: []string{"Content-Type: multipart/form-data; boundary=B"}, body: multipartWith(hdr), status: 400, says: "malformed multipart body"}
	}
	for _, tt := range []struct{ name, hdr string }{
		{"duplicate filename", `Content-Disposition: form-data; name="data"; filename="s.csv"; filename="s.json"`},
		{"duplicate name", `Content-Disposition: form-data; name="label"; name="data"; filename="s.json"`},
		{"case-variant name", `Content-Disposition: form-data; name="label"; NAME="data"; filename="s.json"`},
		{"empty parameter name", `Content-Disposition: form-data; ="x"; name="data"; filename="s.json"`},
		{"folded duplicate", "Content-Disposition: form-data; name=\"label\";\r\n name=\"data\"; filename=\"s.json\""},
		{"folded line", "Content-Disposition: form-data;\r\n\tname=\"data\"; filename=\"s.json\""},
		{"filename* and filename", `Content-Disposition: form-data; name="data"; filename="s.csv"; filename*=UTF-8''s.json`},
		{"name*", `Content-Disposition: form-data; name="x"; name*=UTF-8''data; filename="s.json"`},
		{"backslash escape in name", `Content-Disposition: form-data; name="d\ata"; filename="s.json"`},
		{"two Content-Disposition headers", "Content-Disposition: form-data; name=\"label\"\r\nContent-Disposition: form-data; name=\"data\"; filename=\"s.json\""},
		{"no Content-Disposition", "Content-Type: application/json"},
		{"no name", `Content-Disposition: form-data; filename="s.json"`},
		{"not form-data", `Content-Disposition: attachment; name="data"; filename="s.json"`},
		{"unknown parameter", `Content-Disposition: form-data; name="data"; filename="s.json"; x=1`},
		{"space before =", `Content-Disposition: form-data; name ="data"; filename="s.json"`},
		{"trailing semicolon", `Content-Disposition: form-data; name="data"; filename="s.json";`},
		{"unterminated quote", `Content-Disposition: form-data; name="data; filename="s.json"`},
		{"quoted-printable", "Content-Disposition: form-data; name=\"data\"; filename=\"s.json\"\r\nContent-Transfer-Encoding: quoted-printable"},
		{"two Content-Types", "Content-Disposition: form-data; name=\"data\"; filename=\"s.json\"\r\nContent-Type: text/csv\r\nContent-Type: application/json"},
		{"space in a header name", "Content-Disposition: form-data; name=\"data\"; filename=\"s.json\"\r\nContent Type: text/csv"},
		{"boundary inside headers", "Content-Disposition: form-data; name=\"data\"; filename=\"s.json\"\r\n--BContent-Type: text/csv"},
		// Names other than "data" that a backend reads as the data file: keygate would forward the
		// part unverified. ASP.NET's GetFile folds case, PHP strips leading spaces and reads data[]
		// as the data array, NFKC reads fullwidth letters as ASCII.
		{"name Data", `Content-Disposition: form-data; name="Data"; filename="s.json"`},
		{"name DATA", `Content-Disposition: form-data; name="DATA"; filename="s.json"`},
		{"name data[]", `Content-Disposition: form-data; name="data[]"; filename="s.json"`},
		{"name data[0]", `Content-Disposition: form-data; name="data[0]"; filename="s.json"`},
		{"name leading space", `Content-Disposition: form-data; name=" data"; filename="s.json"`},
		{"name trailing space", `Content-Disposition: form-data; name="data "; filename="s.json"`},
		{"name fullwidth", `Content-Disposition: form-data; name="ｄata"; filename="s.json"`},
		{"name with a Cyrillic a", "Content-Disposition: form-data; name=\"d\u0430ta\"; filename=\"s.json\""},
	} {
		add(files(tt.name, tt.hdr))
	}
	// Other plain names still pass through (they are not files the backend reads as samples).
	fwdPart := files("name label is forwarded", `Content-Disposition: form-data; name="label"`)
	fwdPart.status, fwdPart.says, fwdPart.forward = 200, "", "/api/training/files"
	add(fwdPart)
	// Two Content-Type headers: keygate would verify by the first, gunicorn reads the last.
	for _, tt := range []struct{ name, path string }{{"files", "/api/training/files"}, {"data", "/api/training/data"}} {
		add(catalogueCase{name: "two request Content-Types: " + tt.name, face: policy.FaceIngestion, method: "POST", target: tt.path, key: "ingest1",
			header: []string{"Content-Type: multipart/form-data; boundary=B", "Content-Type: application/json"}, body: multipartWith(`Content-Disposition: form-data; name="label"`),
			status: 400, says: "exactly one Content-Type"})
	}
	// A content coding on the ingestion face: a backend that decodes it reads a sample keygate never
	// verified (body-parser inflates by default).
	for _, ce := range []string{"gzip", "deflate", "br", "GZIP", "identity, gzip", "x-gzip"} {
		add(catalogueCase{name: "content coding: " + ce, face: policy.FaceIngestion, method: "POST", target: "/api/training/data", key: "ingest1",
			header: []string{"Content-Type: application/json", "Content-Encoding: " + ce}, body: "{}", status: 415, says: "without a Content-Encoding"})
	}
	add(catalogueCase{name: "content coding: two headers", face: policy.FaceIngestion, method: "POST", target: "/api/training/files", key: "ingest1",
		header: []string{"Content-Type: multipart/form-data; boundary=B", "Content-Encoding: identity", "Content-Encoding: gzip"}, body: multipartWith(`Content-Disposition: form-data; name="label"`),
		status: 415, says: "without a Content-Encoding"})
	idc := files("content coding: identity is forwarded", `Content-Disposition: form-data; name="label"`)
	idc.header = append(idc.header, "Content-Encoding: identity")
	idc.status, idc.says, idc.forward = 200, "", "/api/training/files"
	add(idc)
	add(studio("two request Content-Types: studio", "POST", "/v1/api/1/raw-data/1/rename", "ingest1", 400, "exactly one Content-Type",
		"Content-Type: application/json", "Content-Type: application/x-www-form-urlencoded"))
	add(
		catalogueCase{name: "multipart: transport padding after a boundary", face: policy.FaceIngestion, method: "POST", target: "/api/training/files", key: "ingest1",
			header: []string{"Content-Type: multipart/form-data; boundary=B"}, body: strings.Replace(multipartWith(`Content-Disposition: form-data; name="data"; filename="s.json"`), "--B\r\n", "--B \r\n", 1),
			status: 400, says: "malformed multipart body"},
		catalogueCase{name: "multipart: the well-formed body's forged part is verified", face: policy.FaceIngestion, method: "POST", target: "/api/training/files", key: "ingest1",
			header: []string{"Content-Type: multipart/form-data; boundary=B"}, body: multipartWith(`Content-Disposition: form-data; name="data"; filename="s.json"` + "\r\nContent-Type: application/json"),
			status: 401, says: "does not match any HMAC key"},
	)

	// Protected headers read two ways: iat as anything but a number, duplicates, case variants.
	// Each sample is validly signed with project 1's key, so only the reading refuses it.
	post := func(name string, body []byte, ctype string) catalogueCase {
		return catalogueCase{name: name, face: policy.FaceIngestion, method: "POST", target: "/api/training/data", key: "ingest1",
			header: []string{"Content-Type: " + ctype}, body: string(signRaw(t, body, catalogueHMAC)), status: 400, says: "not a valid data acquisition file"}
	}
	now := fmt.Sprint(time.Now().Unix())
	for _, tt := range []struct{ name, prot string }{
		{"numeric string", `{"ver":"v1","alg":"HS256","iat":"` + now + `"}`},
		{"null", `{"ver":"v1","alg":"HS256","iat":null}`},
		{"boolean", `{"ver":"v1","alg":"HS256","iat":true}`},
		{"array", `{"ver":"v1","alg":"HS256","iat":[` + now + `]}`},
		{"object", `{"ver":"v1","alg":"HS256","iat":{"s":` + now + `}}`},
		{"twice", `{"ver":"v1","alg":"HS256","iat":` + now + `,"iat":1}`},
		{"IAT beside iat", `{"ver":"v1","alg":"HS256","iat":` + now + `,"IAT":"x"}`},
		{"Alg beside alg", `{"ver":"v1","alg":"HS256","Alg":"none","iat":` + now + `}`},
	} {
		add(post("iat JSON: "+tt.name, jsonSampleWith(tt.prot), "application/json"))
	}
	enc := func(kv ...any) []byte {
		b := []byte{0xa0 | byte(len(kv)/2)}
		for _, x := range kv {
			e, _ := cbor.Marshal(x)
			b = append(b, e...)
		}
		return b
	}
	for _, tt := range []struct {
		name string
		prot []byte
	}{
		{"text string", enc("ver", "v1", "alg", "HS256", "iat", now)},
		{"byte string", enc("ver", "v1", "alg", "HS256", "iat", []byte(now))},
		{"null", enc("ver", "v1", "alg", "HS256", "iat", nil)},
		{"twice", enc("ver", "v1", "alg", "HS256", "iat", time.Now().Unix(), "iat", 1)},
		{"IAT beside iat", enc("ver", "v1", "alg", "HS256", "iat", time.Now().Unix(), "IAT", "x")},
	} {
		add(post("iat CBOR: "+tt.name, cborSampleWith(t, tt.prot), "application/cbor"))
	}
	runCatalogue(t, cases)

	// Bodies over the cap, against a gateway with a 1 KiB cap: refused with nothing forwarded,
	// chunked or not, on both faces.
	small := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.MaxBody = 1 << 10 })
	big := strings.Repeat("a", 4<<10)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	runCatalogueOn(t, small, []catalogueCase{
		{name: "cap: Studio chunked", method: "POST", target: "/v1/api/1/raw-data/3/rename", key: "admin1",
			header: []string{"Transfer-Encoding: chunked"}, body: chunked, status: 413, says: "larger than the limit"},
		{name: "cap: Studio declared", method: "POST", target: "/v1/api/1/raw-data/3/rename", key: "admin1", body: big, status: 413, says: "larger than the limit"},
		{name: "cap: ingestion chunked", face: policy.FaceIngestion, method: "POST", target: "/api/training/data", key: "ingest1",
			header: []string{"Transfer-Encoding: chunked", "Content-Type: text/csv"}, body: chunked, status: 413, says: "larger than the limit"},
		{name: "cap: ingestion declared", face: policy.FaceIngestion, method: "POST", target: "/api/training/data", key: "ingest1",
			header: []string{"Content-Type: text/csv"}, body: big, status: 413, says: "larger than the limit"},
	})
}

// TestCatalogueMultipartRequiredSignatures: with a project that requires signatures, an
// ambiguous part is refused, never forwarded as "unsigned".
func TestCatalogueMultipartRequiredSignatures(t *testing.T) {
	fx := newCatalogueFixture(t, nil)
	if _, err := fx.store.UpdateSettings(context.Background(), 1, func(ps *keys.ProjectSettings) error { ps.RequireSignatures = true; return nil }); err != nil {
		t.Fatal(err)
	}
	unsigned := func(hdr string) string {
		return "--B\r\n" + hdr + "\r\n\r\n{\"protected\":{\"ver\":\"v1\",\"alg\":\"none\"},\"signature\":\"00\",\"payload\":{\"values\":[]}}\r\n--B--\r\n"
	}
	var cases []catalogueCase
	for _, tt := range []struct{ name, hdr string }{
		{"duplicate filename", `Content-Disposition: form-data; name="data"; filename="s.csv"; filename="s.json"`},
		{"duplicate name", `Content-Disposition: form-data; name="x"; name="data"`},
		{"empty parameter name", `Content-Disposition: form-data; name="data"; =""`},
		{"unnamed", `Content-Disposition: form-data`},
	} {
		cases = append(cases, catalogueCase{name: "required signatures: " + tt.name, face: policy.FaceIngestion, method: "POST", target: "/api/training/files", key: "ingest1",
			header: []string{"Content-Type: multipart/form-data; boundary=B"}, body: unsigned(tt.hdr), status: 400, says: "malformed multipart body"})
	}
	cases = append(cases, catalogueCase{name: "required signatures: a plain unsigned part", face: policy.FaceIngestion, method: "POST", target: "/api/training/files", key: "ingest1",
		header: []string{"Content-Type: multipart/form-data; boundary=B"}, body: unsigned(`Content-Disposition: form-data; name="data"; filename="s.json"`), status: 401, says: "requires signed samples"})
	runCatalogueOn(t, fx, cases)
}

// TestDeviceLimitOnVerifiedName: the per-device limit follows a verified sample's device_name,
// so rotating X-Device-Id does not escape it; a header naming the same device is not counted twice.
func TestDeviceLimitOnVerifiedName(t *testing.T) {
	fx := newCatalogueFixture(t, func(f policy.Face, o *Options) {
		if f == policy.FaceIngestion {
			o.Limiter = &RateLimits{Engine: limit.NewLocal(0, nil), Limits: policy.Limits{IngestionDevice: keys.Limit{Rate: 1, Burst: 1, Period: time.Hour}}}
		}
	})
	seq := 0
	send := func(t *testing.T, device, header string) int {
		t.Helper()
		seq++
		body := signRaw(t, []byte(fmt.Sprintf(`{"protected":{"ver":"v1","alg":"HS256","iat":%d},"signature":"%s","payload":{"device_name":%q,"device_type":"T","interval_ms":%d,"sensors":[],"values":[]}}`,
			time.Now().Unix(), strings.Repeat("0", 64), device, seq)), catalogueHMAC)
		r, _ := http.NewRequest("POST", fx.ingestion.URL+"/api/training/data", bytes.NewReader(body))
		r.Header.Set("x-api-key", fx.keys["ingest1"])
		r.Header.Set("Content-Type", "application/json")
		if header != "" {
			r.Header.Set("X-Device-Id", header)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if c := send(t, "dev-a", "rot-1"); c != 200 {
		t.Fatalf("first sample of dev-a: %d", c)
	}
	for i, h := range []string{"rot-2", "rot-3", ""} {
		if c := send(t, "dev-a", h); c != 429 {
			t.Errorf("sample %d of dev-a with X-Device-Id %q: %d, want 429", i+2, h, c)
		}
	}
	if c := send(t, "dev-b", "dev-b"); c != 200 {
		t.Errorf("dev-b naming itself in the header too: %d (counted twice?)", c)
	}
}
