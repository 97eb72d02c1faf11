package admin

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed page
var pageFiles embed.FS

// Page serves the Keys page (/keys) embedded in the binary: plain HTML, CSS and a small script,
// with headers that keep it safe — a strict Content-Security-Policy (no inline script or style,
// requests only to this origin), no framing, no referrer, no caching.
type Page struct {
	files fs.FS
}

var _ http.Handler = (*Page)(nil)

// NewPage returns the Keys page handler.
func NewPage() *Page {
	sub, err := fs.Sub(pageFiles, "page")
	if err != nil {
		panic(err)
	}
	return &Page{files: sub}
}

// PageCSP is the page's Content-Security-Policy.
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var pageTypes = map[string]string{
	"index.html":  "text/html; charset=utf-8",
	"app.js":      "text/javascript; charset=utf-8",
	"style.css":   "text/css; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

// ServeHTTP implements http.Handler for /keys, /keys/, /keys/app.js, /keys/style.css and /keys/favicon.svg.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/keys"), "/")
	if name == "" {
		name = "index.html"
	}
	ctype, ok := pageTypes[name]
	b, err := fs.ReadFile(p.files, name)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", PageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
