package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/verify"
)

// deviceSample signs a fresh JSON (or CBOR) sample of the named device.
func deviceSample(t *testing.T, key, device string, f verify.Format) []byte {
	t.Helper()
	n := deviceSeq.Add(1)
	body := fmt.Appendf(nil, `{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{"device_name":%q,"device_type":"TEST","interval_ms":10,"sensors":[{"name":"accX","units":"m/s2"}],"values":[[1.5],[%d]]}}`, device, n)
	if f == verify.FormatCBOR {
		signed, err := verify.Sign(body, verify.FormatJSON, []byte("x"), verify.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		body = cborOf(t, signed)
	}
	out, err := verify.Sign(body, f, []byte(key), verify.SignOptions{HasIAT: true, IAT: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signatureCount reads keygate_signature_results_total{result} from the ops listener.
func signatureCount(t *testing.T, g gw, result string) string {
	t.Helper()
	res, err := http.Get(g.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	prefix := `keygate_signature_results_total{result="` + result + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return "0"
}

func TestDeviceBoundKeys(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	ctx := context.Background()
	for _, n := range []keys.NewHMACKey{
		{ProjectID: 1, Name: "dev-a", Secret: "key-dev-a", Devices: []string{"dev-a"}},
		{ProjectID: 1, Name: "line 3", Secret: "key-line-3", Devices: []string{"line-3-*"}},
		{ProjectID: 1, Name: "fleet", Secret: "key-fleet", IsDevelopmentKey: true},
		{ProjectID: 2, Name: "other project", Secret: "key-other", Devices: []string{"dev-b"}},
	} {
		if _, err := store.CreateHMACKey(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	ing, _ := mkKey(t, store, 1, keys.RoleIngestion)
	g := startGateway(t, sc, up.URL, nil)
	mark := startGateway(t, sc, up.URL, func(c *Config) { c.SignatureMode = "mark" })

	post := func(g gw, body []byte, ctype string) resp {
		return do(t, "POST", g.ingestion+"/api/training/data", ing, bytes.NewReader(body), "Content-Type", ctype, "x-file-name", "s.json")
	}
	tests := []struct {
		name, key, device string
		format            verify.Format
		status            int
		says              string
	}{
		{"own device", "key-dev-a", "dev-a", verify.FormatJSON, 200, ""},
		{"own device, CBOR", "key-dev-a", "dev-a", verify.FormatCBOR, 200, ""},
		{"another device", "key-dev-a", "dev-b", verify.FormatJSON, 401, "signature key is not valid for device dev-b"},
		{"another device, CBOR", "key-dev-a", "dev-b", verify.FormatCBOR, 401, "signature key is not valid for device dev-b"},
		{"prefix match", "key-line-3", "line-3-07", verify.FormatJSON, 200, ""},
		{"prefix mismatch", "key-line-3", "line-4-01", verify.FormatJSON, 401, "signature key is not valid for device line-4-01"},
		{"odd device name is quoted", "key-dev-a", "dev a\"", verify.FormatJSON, 401, `signature key is not valid for device \"dev a\\\"\"`},
		{"unbound key, any device", "key-fleet", "anything", verify.FormatJSON, 200, ""},
		{"another project's key for its device", "key-other", "dev-b", verify.FormatJSON, 401, "signature key is not valid for device dev-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctype := "application/json"
			if tc.format == verify.FormatCBOR {
				ctype = "application/cbor"
			}
			body := deviceSample(t, tc.key, tc.device, tc.format)
			n := up.count()
			r := post(g, body, ctype)
			if r.status != tc.status || !strings.Contains(r.body, tc.says) {
				t.Fatalf("%d %s; want %d saying %q", r.status, r.body, tc.status, tc.says)
			}
			if reached := up.count() != n; reached != (tc.status == 200) {
				t.Errorf("upstream reached: %v", reached)
			}
		})
	}
	t.Run("counted", func(t *testing.T) {
		if got := signatureCount(t, g, "wrong_device"); got != "5" {
			t.Errorf(`keygate_signature_results_total{result="wrong_device"} = %s, want 5`, got)
		}
	})
	t.Run("a device name after the values cannot pick the key", func(t *testing.T) {
		raw := []byte(`{"protected":{"ver":"v1","alg":"HS256"},"signature":"` + strings.Repeat("0", 64) +
			`","payload":{"device_name":"dev-a","device_type":"T","interval_ms":1,"sensors":[],"values":[[1]],"device_name":"dev-b"}}`)
		n := up.count()
		r := post(g, resign(t, raw, "key-dev-a"), "application/json")
		if r.status != 400 || !strings.Contains(r.body, "duplicate payload.device_name") || up.count() != n {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("multipart: every file is checked against the binding", func(t *testing.T) {
		a1, a2 := deviceSample(t, "key-dev-a", "dev-a", verify.FormatJSON), deviceSample(t, "key-line-3", "line-3-01", verify.FormatJSON)
		forged := deviceSample(t, "key-dev-a", "line-3-02", verify.FormatJSON)
		ct, body := multipartBody(t, a1, forged, a2)
		n := up.count()
		r := do(t, "POST", g.ingestion+"/api/training/files", ing, body, "Content-Type", ct)
		if r.status != 401 || !strings.Contains(r.body, "not valid for device line-3-02") || !strings.Contains(r.body, "file 2 (s1.json)") || up.count() != n {
			t.Errorf("one forged part: %d %s (upstream reached: %v)", r.status, r.body, up.count() != n)
		}
		ct, body = multipartBody(t, a1, a2)
		r = do(t, "POST", g.ingestion+"/api/training/files", ing, body, "Content-Type", ct)
		if r.status != 200 || up.last().Header.Get("X-Keygate-Signature-Files") != "valid,valid" {
			t.Errorf("good parts: %d %s %v", r.status, r.body, up.last().Header)
		}
	})
	t.Run("mark mode forwards a wrong device marked", func(t *testing.T) {
		body := deviceSample(t, "key-dev-a", "dev-b", verify.FormatJSON)
		r := post(mark, body, "application/json")
		if r.status != 200 || up.last().Header.Get("X-Keygate-Signature") != "wrong_device" {
			t.Errorf("%d %s %v", r.status, r.body, up.last().Header)
		}
	})
	t.Run("requireDeviceBoundKeys refuses unbound keys", func(t *testing.T) {
		if _, err := store.UpdateSettings(ctx, 1, func(ps *keys.ProjectSettings) error { ps.RequireDeviceBoundKeys = true; return nil }); err != nil {
			t.Fatal(err)
		}
		var r resp
		n := up.count()
		testutil.Eventually(t, 5*time.Second, func() bool {
			r = post(g, deviceSample(t, "key-fleet", "anything", verify.FormatJSON), "application/json")
			return r.status == 401
		}, "unbound key still accepted: %d %s", r.status, r.body)
		if !strings.Contains(r.body, "requires device-bound HMAC keys") {
			t.Errorf("refusal says %s", r.body)
		}
		forwardedBefore := up.count() - n
		if r := post(g, deviceSample(t, "key-dev-a", "dev-a", verify.FormatJSON), "application/json"); r.status != 200 {
			t.Errorf("bound key after the setting: %d %s", r.status, r.body)
		}
		if up.count()-n != forwardedBefore+1 {
			t.Error("a refused sample reached the upstream")
		}
		if got := signatureCount(t, g, "unbound_key"); got != "1" {
			t.Errorf(`keygate_signature_results_total{result="unbound_key"} = %s, want 1`, got)
		}
	})
	t.Run("revoking one device's key reaches every replica and no other device", func(t *testing.T) {
		list, err := store.ListHMACKeys(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		for _, k := range list {
			if k.Name == "dev-a" {
				id = k.ID
			}
		}
		if err := store.DeleteHMACKey(ctx, 1, id); err != nil {
			t.Fatal(err)
		}
		for name, replica := range map[string]gw{"reject": g, "mark": mark} {
			var r resp
			testutil.Eventually(t, 5*time.Second, func() bool {
				r = post(replica, deviceSample(t, "key-dev-a", "dev-a", verify.FormatJSON), "application/json")
				return r.status == 401 || up.last().Header.Get("X-Keygate-Signature") == "wrong_device"
			}, "replica %s still accepts the revoked key: %d %s", name, r.status, r.body)
			if r := post(replica, deviceSample(t, "key-line-3", "line-3-09", verify.FormatJSON), "application/json"); r.status != 200 {
				t.Errorf("replica %s: another device after the revocation: %d %s", name, r.status, r.body)
			}
		}
	})
}

func TestDeviceBindingAPI(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	admin, _ := mkKey(t, store, 1, keys.RoleAdmin)
	ro, _ := mkKey(t, store, 1, keys.RoleReadOnly)
	g := startGateway(t, sc, up.URL, nil)
	post := func(key, path, body string) resp {
		return do(t, "POST", g.studio+"/v1/api/1/"+path, key, strings.NewReader(body), "Content-Type", "application/json")
	}
	tests := []struct {
		name, body string
		status     int
		says       string
	}{
		{"bound", `{"name":"a","hmacKey":"k-a-long-enough-secret","isDevelopmentKey":false,"devices":["dev-a","line-3-*"]}`, 200, `"success":true`},
		{"unbound (the platform's request)", `{"name":"u","hmacKey":"k-u-long-enough-secret","isDevelopmentKey":false}`, 200, `"success":true`},
		{"star inside", `{"name":"b","hmacKey":"k-b-long-enough-secret","devices":["a*b"]}`, 400, "allowed only at the end"},
		{"lone star", `{"name":"b","hmacKey":"k-b-long-enough-secret","devices":["*"]}`, 400, "matches every device"},
		{"empty name", `{"name":"b","hmacKey":"k-b-long-enough-secret","devices":[""]}`, 400, "must not be empty"},
		{"not a list", `{"name":"b","hmacKey":"k-b-long-enough-secret","devices":"dev-a"}`, 400, `field \"devices\"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(admin, "hmackeys", tc.body)
			if r.status != tc.status || !strings.Contains(r.body, tc.says) {
				t.Errorf("%d %s; want %d saying %q", r.status, r.body, tc.status, tc.says)
			}
		})
	}
	r := do(t, "GET", g.studio+"/v1/api/1/hmackeys", admin, nil)
	if r.status != 200 || !strings.Contains(r.body, `"devices":["dev-a","line-3-*"]`) || strings.Count(r.body, `"devices"`) != 1 {
		t.Errorf("listing: %d %s", r.status, r.body)
	}

	t.Run("settings", func(t *testing.T) {
		if r := do(t, "GET", g.studio+"/v1/api/1/keygate/settings", admin, nil); r.status != 200 || !strings.Contains(r.body, `"requireDeviceBoundKeys":false`) {
			t.Errorf("get: %d %s", r.status, r.body)
		}
		if r := post(admin, "keygate/settings", `{"requireDeviceBoundKeys":true}`); r.status != 200 || !strings.Contains(r.body, `"requireDeviceBoundKeys":true`) {
			t.Errorf("set: %d %s", r.status, r.body)
		}
		if ps, err := store.Settings(context.Background(), 1); err != nil || !ps.RequireDeviceBoundKeys || ps.RequireSignatures {
			t.Errorf("stored settings %+v %v", ps, err)
		}
		if r := post(admin, "keygate/settings", `{}`); r.status != 400 {
			t.Errorf("empty change: %d %s", r.status, r.body)
		}
		if r := post(ro, "keygate/settings", `{"requireDeviceBoundKeys":false}`); r.status != 403 {
			t.Errorf("read-only key: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", g.studio+"/v1/api/1/keygate/other", admin, nil); r.status != 404 || up.count() != 0 {
			t.Errorf("unknown extension: %d %s (upstream reached: %v)", r.status, r.body, up.count() != 0)
		}
	})
}
