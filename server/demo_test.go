package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/standin"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

// TestDemoUploaderSequence replays the command-line uploader's calls (docs/protocol.md §3.2) through the gateway in
// front of the demo's stand-in backend: all succeed with the development (Ingestion) key; a read-only
// key can look but not upload.
func TestDemoUploaderSequence(t *testing.T) {
	dir := t.TempDir()
	sc := StoreConfig{DataDir: filepath.Join(dir, "data")}
	dk, err := EnsureDemoKeys(context.Background(), sc, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{dk.Admin, dk.Dev, dk.ReadOnly} {
		if keys.ValidateAPIKey(k) != nil {
			t.Fatalf("demo keys %+v", dk)
		}
	}
	devKey, roKey := dk.Dev, dk.ReadOnly
	uploads := filepath.Join(dir, "uploads")
	backend := httptest.NewServer(&standin.Backend{Dir: uploads})
	defer backend.Close()
	g := startGateway(t, sc, backend.URL, nil)

	// A second start does not create keys again.
	g.stop()
	if again, err := EnsureDemoKeys(context.Background(), sc, 1); err != nil || again.Existing != 3 || again.Dev != devKey || again.Admin != "" || again.HMAC != dk.HMAC {
		t.Errorf("second start: %v %+v", err, again)
	}
	g = startGateway(t, sc, backend.URL, nil)

	upload := func(key string) resp {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("data", "idle.01.json")
		fw.Write([]byte(`{"protected":{"ver":"v1","alg":"none"},"signature":"00","payload":{"device_type":"TEST","interval_ms":10,"sensors":[{"name":"a","units":"m"}],"values":[[1],[2]]}}`))
		mw.Close()
		return do(t, "POST", g.ingestion+"/api/training/files", key, &body, "Content-Type", mw.FormDataContentType(), "x-label", "idle")
	}
	cliUA := "EDGE_IMPULSE_CLI"
	steps := []struct {
		name  string
		run   func(key string) resp
		roOK  bool
		check string
	}{
		{"GET projects", func(k string) resp { return do(t, "GET", g.studio+"/v1/api/projects", k, nil, "User-Agent", cliUA) }, true, `"projects":[{"id":1`},
		{"GET projects again", func(k string) resp { return do(t, "GET", g.studio+"/v1/api/projects", k, nil, "User-Agent", cliUA) }, true, `"id":1`},
		{"GET devkeys/hmac", func(k string) resp {
			return do(t, "GET", g.studio+"/v1/api/1/devkeys/hmac", k, nil, "User-Agent", cliUA)
		}, false, `"hmacKey":"`},
		{"GET project", func(k string) resp { return do(t, "GET", g.studio+"/v1/api/1", k, nil, "User-Agent", cliUA) }, true, `"project":{`},
		{"POST files", upload, false, `"files":[{`},
	}
	for _, s := range steps {
		if r := s.run(devKey); r.status != 200 || !strings.Contains(r.body, s.check) {
			t.Errorf("%s with the development key: %d %s", s.name, r.status, r.body)
		}
		r := s.run(roKey)
		if s.roOK != (r.status == 200) {
			t.Errorf("%s with the read-only key: %d %s", s.name, r.status, r.body)
		}
	}
	files, _ := filepath.Glob(filepath.Join(uploads, "1", "training", "*"))
	if len(files) != 1 {
		t.Fatalf("%d files stored, want 1", len(files))
	}
	if b, _ := os.ReadFile(files[0]); !bytes.Contains(b, []byte(`"alg":"none"`)) {
		t.Errorf("stored file: %q", b)
	}
}

// TestRunDemo runs `keygate demo` in-process: it prints the keys it created and where each face
// listens, the Studio face answers the printed admin key through the stand-in, and it stops cleanly.
func TestRunDemo(t *testing.T) {
	cfg, err := LoadDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.StoreConfig = StoreConfig{DataDir: t.TempDir()}
	cfg.StudioListen, cfg.IngestionListen, cfg.RemoteListen, cfg.OpsListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.StudioUpstream, cfg.IngestionUpstream, cfg.RemoteUpstream = "", "", ""
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDemo(ctx, cfg, 1, Options{LogOutput: io.Discard}, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunDemo: %v", err)
		}
	}()
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(out.String(), "keygate demo is running") }, "no banner: %s", out)
	admin := regexp.MustCompile(`admin API key: +(ei_[0-9a-f]{64})`).FindStringSubmatch(out.String())
	studio := regexp.MustCompile(`Studio API +http://(\S+)`).FindStringSubmatch(out.String())
	if admin == nil || studio == nil || !strings.Contains(out.String(), "ws://127.0.0.1:") {
		t.Fatalf("demo output:\n%s", out)
	}
	if r := do(t, "GET", "http://"+studio[1]+"/v1/api/projects", admin[1], nil); r.status != 200 || !strings.Contains(r.body, `"id":1`) {
		t.Errorf("GET projects with the printed admin key: %d %s", r.status, r.body)
	}

	// The privileged deployment block: the stand-in runner fetches the development key from the ops
	// listener with the service token and calls the Studio API back through keygate with it.
	dev := regexp.MustCompile(`development API key \(Ingestion\): +(ei_[0-9a-f]{64})`).FindStringSubmatch(out.String())
	if dev == nil {
		t.Fatalf("no development key in the demo output:\n%s", out)
	}
	job := func() resp {
		return do(t, "POST", "http://"+studio[1]+"/v1/api/1/jobs/privileged-block", admin[1], nil)
	}
	var ran struct {
		Success bool `json:"success"`
		Block   struct {
			RanAs struct {
				APIKeyID  int64  `json:"apiKeyId"`
				ProjectID int64  `json:"projectId"`
				Role      string `json:"role"`
			} `json:"ranAs"`
		} `json:"block"`
	}
	r := job()
	if r.status != 200 || json.Unmarshal([]byte(r.body), &ran) != nil || !ran.Success || ran.Block.RanAs.ProjectID != 1 || ran.Block.RanAs.Role != "ingestiononly" || strings.Contains(r.body, "ei_") {
		t.Fatalf("privileged block: %d %s", r.status, r.body)
	}
	if info := do(t, "GET", "http://"+studio[1]+"/v1/api/projects/api-key-info", dev[1], nil); !strings.Contains(info.body, fmt.Sprintf(`"apiKeyId":%d`, ran.Block.RanAs.APIKeyID)) {
		t.Errorf("the block ran as key %d, not the development key (%s)", ran.Block.RanAs.APIKeyID, info.body)
	}
	if r := do(t, "DELETE", "http://"+studio[1]+fmt.Sprintf("/v1/api/1/apikeys/%d", ran.Block.RanAs.APIKeyID), admin[1], nil); r.status != 200 {
		t.Fatalf("revoke the development key: %d %s", r.status, r.body)
	}
	if r := job(); r.status != 409 || !strings.Contains(r.body, "no development API key") {
		t.Errorf("privileged block after the development key was revoked: %d %s", r.status, r.body)
	}
	if r := job(); r.status != 409 {
		t.Errorf("once more: %d", r.status)
	}
}

func TestDemoOnLoopback(t *testing.T) {
	cfg := Config{StudioListen: ":4800", IngestionListen: ":4810", RemoteListen: ":4802", OpsListen: "0.0.0.0:9090"}
	env := map[string]string{"KEYGATE_REMOTE_LISTEN": ":4802"}
	demoOnLoopback(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	want := Config{StudioListen: "127.0.0.1:4800", IngestionListen: "127.0.0.1:4810", RemoteListen: ":4802", OpsListen: "0.0.0.0:9090"}
	if cfg.StudioListen != want.StudioListen || cfg.IngestionListen != want.IngestionListen ||
		cfg.RemoteListen != want.RemoteListen || cfg.OpsListen != want.OpsListen {
		t.Errorf("listeners %q %q %q %q; want the unset ports on loopback, a set variable and an explicit address kept",
			cfg.StudioListen, cfg.IngestionListen, cfg.RemoteListen, cfg.OpsListen)
	}
}
