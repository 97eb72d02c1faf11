package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/verify"
)

const testHMAC = "fed53116f20684c067774ebf9e7bcbdc"

var deviceSeq atomic.Int64

// sample returns a freshly signed JSON (or CBOR) sample.
func sample(t *testing.T, key string, f verify.Format, iat *int64, spaced bool) []byte {
	t.Helper()
	dev := fmt.Sprintf("dev-%d", deviceSeq.Add(1))
	sep := ","
	if spaced {
		sep = ", "
	}
	body := []byte(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{"device_name":"` + dev + `"` + sep +
		`"device_type":"TEST","interval_ms":10,"sensors":[{"name":"accX","units":"m/s2"}],"values":[[1.5],[2.25],[` + fmt.Sprint(deviceSeq.Load()) + `]]}}`)
	o := verify.SignOptions{}
	if iat != nil {
		o = verify.SignOptions{HasIAT: true, IAT: *iat}
	}
	if f == verify.FormatCBOR {
		signed, err := verify.Sign(body, verify.FormatJSON, []byte("x"), verify.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		body = cborOf(t, signed)
	}
	out, err := verify.Sign(body, f, []byte(key), o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func now() *int64 { n := time.Now().Unix(); return &n }

func multipartBody(t *testing.T, files ...[]byte) (string, *bytes.Buffer) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i, f := range files {
		h := textproto.MIMEHeader{}
		if bytes.HasPrefix(f, []byte("{")) {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="data"; filename="s%d.json"`, i))
			h.Set("Content-Type", "application/json")
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="data"; filename="s%d.csv"`, i))
			h.Set("Content-Type", "text/csv")
		}
		w, _ := mw.CreatePart(h)
		w.Write(f)
	}
	mw.Close()
	return mw.FormDataContentType(), &b
}

func TestIngestionSignatures(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	ctx := context.Background()
	if _, err := store.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: 1, Name: "old", Secret: "rotated-out-key"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: 1, Name: "dev", Secret: testHMAC, IsDevelopmentKey: true}); err != nil {
		t.Fatal(err)
	}
	ing, _ := mkKey(t, store, 1, keys.RoleIngestion)
	a := startGateway(t, sc, up.URL, func(c *Config) { c.MaxBody = 1 << 20 })
	b := startGateway(t, sc, up.URL, func(c *Config) { c.MaxBody = 1 << 20 })
	mark := startGateway(t, sc, up.URL, func(c *Config) { c.SignatureMode = "mark" })

	post := func(g gw, body []byte, ctype string) resp {
		return do(t, "POST", g.ingestion+"/api/training/data", ing, bytes.NewReader(body), "Content-Type", ctype, "x-file-name", "s.json", "x-label", "idle")
	}
	expectForwarded := func(t *testing.T, r resp, body []byte, sig string) {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		last := up.last()
		if sha256.Sum256(last.Body) != sha256.Sum256(body) {
			t.Error("upstream did not receive the exact bytes")
		}
		if got := last.Header.Get("X-Keygate-Signature"); got != sig {
			t.Errorf("X-Keygate-Signature %q, want %q", got, sig)
		}
		if last.Header.Get("X-Label") != "idle" && last.Header.Get("Content-Type") == "application/json" {
			t.Error("ingestion headers not passed through")
		}
	}
	refused := func(t *testing.T, g gw, body []byte, ctype string, status int, says string) {
		t.Helper()
		n := up.count()
		r := post(g, body, ctype)
		if r.status != status || !strings.Contains(r.body, says) || !strings.Contains(r.body, `"success":false`) {
			t.Errorf("%d %s; want %d saying %q", r.status, r.body, status, says)
		}
		if up.count() != n {
			t.Error("a refused body reached the upstream")
		}
	}

	t.Run("valid compact, spaced, float and absent iat, CBOR", func(t *testing.T) {
		for name, body := range map[string][]byte{
			"compact": sample(t, testHMAC, verify.FormatJSON, now(), false),
			"spaced":  sample(t, testHMAC, verify.FormatJSON, now(), true),
			"no iat":  sample(t, testHMAC, verify.FormatJSON, nil, false),
			"float iat": bytes.Replace(sample(t, "unused", verify.FormatJSON, nil, false), []byte(`"alg":"HS256"`),
				[]byte(fmt.Sprintf(`"alg":"HS256","iat":%d.5`, time.Now().Unix())), 1),
		} {
			t.Run(name, func(t *testing.T) {
				if name == "float iat" {
					body = resign(t, body, testHMAC)
				}
				expectForwarded(t, post(a, body, "application/json"), body, "valid")
			})
		}
		body := sample(t, testHMAC, verify.FormatCBOR, now(), false)
		expectForwarded(t, post(a, body, "application/cbor"), body, "valid")
		body = sample(t, testHMAC, verify.FormatCBOR, now(), false)
		expectForwarded(t, post(a, body, "application/octet-stream"), body, "valid")
	})
	t.Run("rotation: an older HMAC key still verifies", func(t *testing.T) {
		body := sample(t, "rotated-out-key", verify.FormatJSON, now(), false)
		expectForwarded(t, post(a, body, "application/json"), body, "valid")
	})
	t.Run("replay across replicas", func(t *testing.T) {
		body := sample(t, testHMAC, verify.FormatJSON, now(), false)
		expectForwarded(t, post(a, body, "application/json"), body, "valid")
		refused(t, b, body, "application/json", 409, "replayed sample")
		refused(t, a, body, "application/json", 409, "replayed sample")
	})
	t.Run("refused", func(t *testing.T) {
		good := sample(t, testHMAC, verify.FormatJSON, now(), false)
		tampered := bytes.Replace(good, []byte(`"TEST"`), []byte(`"EVIL"`), 1)
		refused(t, a, tampered, "application/json", 401, "does not match any HMAC key of project 1")
		refused(t, a, sample(t, "wrong-key", verify.FormatJSON, now(), false), "application/json", 401, "does not match any HMAC key of project 1")
		old := time.Now().Add(-time.Hour).Unix()
		refused(t, a, sample(t, testHMAC, verify.FormatJSON, &old, false), "application/json", 401, "outside the allowed clock skew of 15m0s")
		future := time.Now().Add(time.Hour).Unix()
		refused(t, a, sample(t, testHMAC, verify.FormatJSON, &future, false), "application/json", 401, "clock skew")
		refused(t, a, []byte(`{"protected":{"ver":"v1","alg":"HS256"`), "application/json", 400, "not a valid data acquisition file")
		refused(t, a, bytes.Repeat([]byte("a"), 2<<20), "application/octet-stream", 413, "larger than the limit")
	})
	t.Run("unsigned files pass marked", func(t *testing.T) {
		zero := sample(t, "0", verify.FormatJSON, now(), false)
		expectForwarded(t, post(a, zero, "application/json"), zero, "unsigned")
		none := []byte(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{"device_type":"X","interval_ms":1,"sensors":[],"values":[]}}`)
		expectForwarded(t, post(a, none, "application/json"), none, "unsigned")
		csv := []byte("timestamp,accX\n0,1\n")
		expectForwarded(t, post(a, csv, "text/csv"), csv, "unsigned")
		wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 64)...)
		r := do(t, "POST", a.ingestion+"/api/training/data", ing, bytes.NewReader(wav), "Content-Type", "application/octet-stream", "x-file-name", "x.wav")
		expectForwarded(t, r, wav, "unsigned")
	})
	t.Run("multipart", func(t *testing.T) {
		g1, g2 := sample(t, testHMAC, verify.FormatJSON, now(), false), sample(t, testHMAC, verify.FormatJSON, now(), false)
		bad := bytes.Replace(sample(t, testHMAC, verify.FormatJSON, now(), false), []byte(`"TEST"`), []byte(`"EVIL"`), 1)
		ct, body := multipartBody(t, g1, bad, g2)
		n := up.count()
		r := do(t, "POST", a.ingestion+"/api/training/files", ing, bytes.NewReader(body.Bytes()), "Content-Type", ct)
		if r.status != 401 || !strings.Contains(r.body, "file 2 (s1.json)") || up.count() != n {
			t.Errorf("one bad part: %d %s (upstream reached: %v)", r.status, r.body, up.count() != n)
		}
		// The good parts were not recorded as seen: sent again without the bad part, they pass.
		ct, body = multipartBody(t, g1, g2, []byte("a,b\n1,2\n"))
		sent := bytes.Clone(body.Bytes())
		r = do(t, "POST", a.ingestion+"/api/training/files", ing, body, "Content-Type", ct)
		if r.status != 200 {
			t.Fatalf("good parts: %d %s", r.status, r.body)
		}
		last := up.last()
		if !bytes.Equal(last.Body, sent) || last.Header.Get("X-Keygate-Signature") != "valid" || last.Header.Get("X-Keygate-Signature-Files") != "valid,valid,unsigned" {
			t.Errorf("forwarded multipart: equal=%v headers %v", bytes.Equal(last.Body, sent), last.Header)
		}
	})
	t.Run("mark mode", func(t *testing.T) {
		good := sample(t, testHMAC, verify.FormatJSON, now(), false)
		tampered := bytes.Replace(good, []byte(`"TEST"`), []byte(`"EVIL"`), 1)
		expectForwarded(t, post(mark, tampered, "application/json"), tampered, "invalid")
		old := time.Now().Add(-time.Hour).Unix()
		refused(t, mark, sample(t, testHMAC, verify.FormatJSON, &old, false), "application/json", 401, "clock skew")
	})
	t.Run("project requires signatures", func(t *testing.T) {
		if _, err := store.UpdateSettings(ctx, 1, func(ps *keys.ProjectSettings) error { ps.RequireSignatures = true; return nil }); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, func() bool {
			r := post(a, []byte("a,b\n"), "text/csv")
			return r.status == 401 && strings.Contains(r.body, "requires signed samples")
		}, "setting not honoured")
		refused(t, a, sample(t, "0", verify.FormatJSON, now(), false), "application/json", 401, "requires signed samples")
		good := sample(t, testHMAC, verify.FormatJSON, now(), false)
		expectForwarded(t, post(a, good, "application/json"), good, "valid")
		store.UpdateSettings(ctx, 1, func(ps *keys.ProjectSettings) error { ps.RequireSignatures = false; return nil })
	})
}

func TestReplayMarkReleasedWhenUpstreamFails(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	sc := StoreConfig{DataDir: t.TempDir()}
	s, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, s, 1, keys.RoleIngestion)
	s.CreateHMACKey(context.Background(), keys.NewHMACKey{ProjectID: 1, Name: "h", Secret: testHMAC})
	s.Close()
	g := startGateway(t, sc, up.URL, nil)
	body := sample(t, testHMAC, verify.FormatJSON, now(), false)
	if r := do(t, "POST", g.ingestion+"/api/training/data", key, bytes.NewReader(body), "Content-Type", "application/json"); r.status != 503 {
		t.Fatalf("first try: %d %s", r.status, r.body)
	}
	fail.Store(false)
	if r := do(t, "POST", g.ingestion+"/api/training/data", key, bytes.NewReader(body), "Content-Type", "application/json"); r.status != 200 {
		t.Errorf("retry after the upstream failed: %d %s; a retry is not a replay", r.status, r.body)
	}
	if r := do(t, "POST", g.ingestion+"/api/training/data", key, bytes.NewReader(body), "Content-Type", "application/json"); r.status != 409 {
		t.Errorf("replay after acceptance: %d", r.status)
	}
}
