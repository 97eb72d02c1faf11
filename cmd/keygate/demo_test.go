package main

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/standin"
)

// TestDemoUploaderSequence replays the command-line uploader's calls (docs/protocol.md §3.2) through the gateway in
// front of the demo's stand-in backend: all succeed with the development (Ingestion) key; a read-only
// key can look but not upload.
func TestDemoUploaderSequence(t *testing.T) {
	dir := t.TempDir()
	sc := StoreConfig{DataDir: filepath.Join(dir, "data")}
	var out bytes.Buffer
	if err := demoKeys(context.Background(), sc, 1, &out); err != nil {
		t.Fatal(err)
	}
	found := keyRE.FindAllString(out.String(), -1)
	if len(found) != 3 {
		t.Fatalf("demo printed %d keys: %s", len(found), out.String())
	}
	devKey, roKey := found[1], found[2]
	uploads := filepath.Join(dir, "uploads")
	backend := httptest.NewServer(&standin.Backend{Dir: uploads})
	defer backend.Close()
	g := startGateway(t, sc, backend.URL, nil)

	// A second start does not create keys again.
	out.Reset()
	g.stop()
	if err := demoKeys(context.Background(), sc, 1, &out); err != nil || !strings.Contains(out.String(), "already has 3 API key(s)") || !strings.Contains(out.String(), devKey) {
		t.Errorf("second start: %v %q", err, out.String())
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
