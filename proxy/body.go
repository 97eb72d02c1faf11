package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/apierr"
)

// Request bodies cost nothing before the key is checked and are bounded after it:
//
//   - nothing is read or allocated for a body until identify, authorize and limit have passed;
//   - a refusal before the body was read answers at once and closes the connection (refuseUnread)
//     instead of letting net/http drain the unread body first;
//   - from the first read on, a deadline bounds the whole body (Options.BodyTimeout, 408 after it);
//   - a body that is buffered (ingestion verification, Studio bodies without a length) grows with
//     the bytes that arrive, never by the declared Content-Length, up to Options.MaxBody (413).

// clientBody wraps a request body while keygate reads it, to learn whether it was read to its end
// and whether the body deadline cut it short, and to lift the deadline once the last byte is in:
// net/http keeps reading the connection in the background after that (to notice a client that
// hangs up), and a deadline firing there would cancel a request whose upstream is merely slow.
type clientBody struct {
	io.ReadCloser
	rc http.ResponseController

	mu       sync.Mutex
	deadline bool      // a read deadline is set on the connection for this body
	until    time.Time // when it passes (zero: no deadline)
	detached bool      // the handler returned: the connection is no longer this request's to touch

	done     atomic.Bool // io.EOF seen: the whole body was read
	timedOut atomic.Bool // the body deadline passed before the last byte
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		b.done.Store(true)
		b.mu.Lock()
		if b.deadline && !b.detached {
			_ = b.rc.SetReadDeadline(time.Time{})
			b.deadline = false
		}
		b.mu.Unlock()
	case isTimeout(err):
		b.timedOut.Store(true)
	}
	return n, err
}

// cutShort reports whether the body deadline ended the body: the failed read said so, or the
// deadline has passed with the body incomplete. (The second covers a race: net/http cancels the
// request's context inside the failing read, and a transport watching the context may give up
// before that read returns.)
func (b *clientBody) cutShort() bool {
	if b.timedOut.Load() {
		return true
	}
	return !b.done.Load() && !b.until.IsZero() && !time.Now().Before(b.until)
}

// detach is called when the handler returns; a transport goroutine still reading the body must not
// change the deadlines of the connection's next request.
func (b *clientBody) detach() {
	b.mu.Lock()
	b.detached = true
	b.mu.Unlock()
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// hasBody reports whether the request declares a body (a length, or chunked).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// startBody begins the body phase, after the request is authorized: the declared-length check, the
// deadline, and the cap. raw is net/http's own ResponseWriter, so that an over-cap body makes the
// server close the connection after the 413 (http.MaxBytesReader tells it so).
func (g *Gateway) startBody(raw http.ResponseWriter, r *http.Request, st *state) error {
	if !hasBody(r) {
		return nil
	}
	if g.opt.MaxBody > 0 && r.ContentLength > g.opt.MaxBody {
		return apierr.TooLarge(g.opt.MaxBody)
	}
	// The ResponseController is held by value: one allocation per body, none on requests without.
	cb := &clientBody{ReadCloser: r.Body, rc: *http.NewResponseController(raw)}
	if until := time.Now().Add(g.opt.BodyTimeout); g.opt.BodyTimeout > 0 && cb.rc.SetReadDeadline(until) == nil {
		cb.deadline, cb.until = true, until
	}
	st.body = cb
	r.Body = cb
	if g.opt.MaxBody > 0 {
		r.Body = http.MaxBytesReader(raw, r.Body, g.opt.MaxBody)
	}
	return nil
}

// bodyError turns an error reading the client's body into its answer: 413 over the cap, 408 past
// the body deadline, 400 otherwise.
func bodyError(err error, st *state) *apierr.Error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return apierr.TooLarge(mbe.Limit)
	case st != nil && st.body != nil && st.body.cutShort(), isTimeout(err):
		return bodyTimeout()
	}
	return apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, "could not read the request body", err)
}

func bodyTimeout() *apierr.Error {
	return apierr.New(http.StatusRequestTimeout, apierr.OutcomeBodyTimeout, "the request body did not arrive in time", nil)
}

// bufferBody reads the whole (already capped) body into memory. The buffer starts small and grows
// as bytes arrive, so a declared Content-Length costs nothing until the bytes are really sent.
func bufferBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, 64<<10)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

// replaceBody makes r carry exactly body, with its length (nothing chunked goes upstream).
func replaceBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
}

// refuseUnread prepares the answer to a request refused before its body was read to the end. Left
// alone, net/http reads ("drains") up to 256 KiB of the rest before writing the answer and again
// before reusing the connection; a client that sends slowly, or never, holds the connection and a
// goroutine for as long as it likes. Instead keygate takes only what has already arrived: if that
// is the whole body the connection stays usable; otherwise the answer says Connection: close and
// the server closes right after it. w must be net/http's own ResponseWriter; raw is the body
// net/http handed the handler.
func refuseUnread(w http.ResponseWriter, r *http.Request, raw io.Reader) {
	if r.ProtoMajor != 1 {
		return // HTTP/2 resets the stream of an unread body itself
	}
	rc := http.NewResponseController(w)
	// A client that sent Expect: 100-continue has sent no body yet; reading would ask for it.
	if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") && rc.SetReadDeadline(time.Now()) == nil {
		// With the deadline in the past a read returns only bytes the server has already buffered.
		if _, err := io.CopyN(io.Discard, raw, 256<<10); err == io.EOF {
			_ = rc.SetReadDeadline(time.Time{})
			return
		}
	}
	// Tell net/http this request's body is abandoned, as http.MaxBytesReader does when a body
	// exceeds its limit: the server then closes the connection after the answer, half-closing first
	// and lingering briefly so the client reads the answer before any reset. A one-byte reader over
	// a zero limit is that signal without touching the client's body.
	_, _ = http.MaxBytesReader(w, io.NopCloser(strings.NewReader("x")), 0).Read(make([]byte, 1))
	w.Header().Set("Connection", "close")
}

// sentBody is the outbound body of a request with replay marks: it notes when the upstream
// transport has taken the last byte (read io.EOF, or the declared length). Whatever the transport
// (net/http's or keygate's upstream package), that is the moment after which the upstream may have
// the whole sample.
type sentBody struct {
	io.ReadCloser
	st   *state
	size int64
	n    int64
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF || b.size > 0 && b.n >= b.size {
		b.st.wrote.Store(true)
	}
	return n, err
}

// RefuseBody is refuseUnread for a face outside the gateway (the remote face) that refuses a
// request without reading the body it declares: call it before writing the refusal.
func RefuseBody(w http.ResponseWriter, r *http.Request) {
	if hasBody(r) {
		refuseUnread(w, r, r.Body)
	}
}
