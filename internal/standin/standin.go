// Package standin is a small stand-in for the platform's Studio and ingestion backends, used by
// `keygate demo` so the gateway can be tried with the platform's own clients and no real backend.
// It trusts the identity headers keygate sets, as a real backend behind keygate would.
package standin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Backend answers the few Studio calls the uploader makes and stores ingestion uploads under Dir.
type Backend struct {
	// Dir receives uploads as Dir/<project>/<category>/<file>.
	Dir string
	// MaxFiles bounds the parts of one multipart upload (docs/protocol.md §4: 1000).
	MaxFiles int
	// Privileged runs the "privileged deployment block" job (nil: the job is not offered).
	Privileged *Privileged
}

var _ http.Handler = (*Backend)(nil)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"success": false, "error": msg})
}

// ServeHTTP implements http.Handler.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pid := r.Header.Get("X-Keygate-Project")
	if pid == "" {
		fail(w, http.StatusUnauthorized, "stand-in backend: request did not come through keygate")
		return
	}
	project := map[string]any{"id": mustInt(pid), "name": "Demo project " + pid, "owner": "keygate demo", "whitelabelId": nil}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/api/projects":
		writeJSON(w, 200, map[string]any{"success": true, "projects": []any{project}})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "v1" && parts[1] == "api":
		writeJSON(w, 200, map[string]any{"success": true, "project": project, "csvImportConfig": nil})
	case b.Privileged != nil && r.Method == http.MethodPost && len(parts) == 5 && parts[0] == "v1" && parts[1] == "api" &&
		parts[2] == pid && parts[3] == "jobs" && parts[4] == "privileged-block":
		b.Privileged.run(w, r, pid)
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "api" && parts[2] == "files":
		b.files(w, r, pid, parts[1])
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "api" && parts[2] == "data":
		b.data(w, r, pid, parts[1])
	case strings.HasPrefix(r.URL.Path, "/v1/"):
		writeJSON(w, 200, map[string]any{"success": true, "note": "keygate demo stand-in: " + r.Method + " " + r.URL.Path + " accepted"})
	default:
		fail(w, http.StatusNotFound, "stand-in backend: no such endpoint")
	}
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func (b *Backend) save(pid, category, name string, body io.Reader) (string, error) {
	dir := filepath.Join(b.Dir, unsafeName.ReplaceAllString(pid, "_"), unsafeName.ReplaceAllString(category, "_"))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := unsafeName.ReplaceAllString(filepath.Base(name), "_")
	if base == "" || base == "." || base == "_" {
		base = "sample"
	}
	stored := hex.EncodeToString(rnd[:]) + "." + base
	f, err := os.OpenFile(filepath.Join(dir, stored), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return "", err
	}
	return stored, f.Close()
}

func (b *Backend) files(w http.ResponseWriter, r *http.Request, pid, category string) {
	mr, err := r.MultipartReader()
	if err != nil {
		fail(w, http.StatusBadRequest, "expected a multipart/form-data body")
		return
	}
	var results []map[string]any
	max := b.MaxFiles
	if max <= 0 {
		max = 1000
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(w, http.StatusBadRequest, "malformed multipart body")
			return
		}
		if part.FormName() != "data" {
			continue
		}
		if len(results) == max {
			fail(w, http.StatusBadRequest, fmt.Sprintf("at most %d files per request", max))
			return
		}
		results = append(results, b.saveResult(pid, category, part))
	}
	if len(results) == 0 {
		fail(w, http.StatusBadRequest, "no files (parts named \"data\") in the request")
		return
	}
	writeJSON(w, 200, map[string]any{"success": true, "files": results})
}

func (b *Backend) saveResult(pid, category string, part *multipart.Part) map[string]any {
	name, err := b.save(pid, category, part.FileName(), part)
	if err != nil {
		return map[string]any{"success": false, "error": "could not store the file"}
	}
	return map[string]any{"success": true, "fileName": name, "signatureCheck": part.Header.Get("X-Keygate-Signature")}
}

func (b *Backend) data(w http.ResponseWriter, r *http.Request, pid, category string) {
	name := r.Header.Get("x-file-name")
	if name == "" {
		name = "sample"
	}
	stored, err := b.save(pid, category, name, r.Body)
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not store the file")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, stored)
}
