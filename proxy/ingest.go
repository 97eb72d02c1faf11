package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/verify"
)

// SignatureMode says what happens to a sample whose signature does not verify.
type SignatureMode string

// Signature modes.
const (
	// ModeReject (default): a bad signature never reaches the backend (401).
	ModeReject SignatureMode = "reject"
	// ModeMark forwards it with X-Keygate-Signature: invalid, as the hosted platform stores and
	// marks such samples.
	ModeMark SignatureMode = "mark"
)

// Signature results, as sent in X-Keygate-Signature and counted in keygate_signature_results_total.
const (
	SigValid     = "valid"
	SigInvalid   = "invalid"
	SigUnsigned  = "unsigned"
	SigReplayed  = "replayed"
	SigStale     = "stale"
	SigMalformed = "malformed"
	SigTooLarge  = "too_large"
	// SigWrongDevice: no key that may sign for the sample's payload.device_name signed it, in a
	// project with device-bound keys (docs/signatures.md).
	SigWrongDevice = "wrong_device"
	// SigUnboundKey: signed with a key bound to no device while the project sets
	// requireDeviceBoundKeys.
	SigUnboundKey = "unbound_key"
)

// zeroKey is the HMAC key clients sign with when they have none.
var zeroKey = [][]byte{[]byte("0")}

// deviceLabel names a device in a refusal: "device dev-a", quoted when the name is not plain.
func deviceLabel(name string) string {
	if name == "" {
		return "a sample without payload.device_name"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return "device " + strconv.Quote(name)
		}
	}
	return "device " + name
}

// ProjectSource gives a project's HMAC keys and settings (cache.Projects).
type ProjectSource interface {
	Get(ctx context.Context, projectID int64) (cache.Project, error)
}

// IngestOptions configure the ingestion verifier.
type IngestOptions struct {
	Mode SignatureMode
	// MaxClockSkew bounds |now - iat|; it is also how long accepted signatures are remembered.
	MaxClockSkew time.Duration
	// RequireIAT refuses signed samples without iat (devices without clocks send none).
	RequireIAT bool
	Projects   ProjectSource
	// Replay remembers accepted signatures; Fallback is used when it fails (Redis down).
	Replay   verify.ReplayGuard
	Fallback verify.ReplayGuard
	// MaxFiles bounds the parts of one multipart upload (docs/protocol.md §4: 1000).
	MaxFiles int
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time
}

// Ingest verifies ingestion bodies: signatures, iat, replays. It implements BodyVerifier.
type Ingest struct {
	opt IngestOptions
}

var _ BodyVerifier = (*Ingest)(nil)

// NewIngest builds the verifier.
func NewIngest(o IngestOptions) *Ingest {
	if o.Mode == "" {
		o.Mode = ModeReject
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = 15 * time.Minute
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Ingest{opt: o}
}

// file is one file of an upload and what was found about it.
type file struct {
	label  string // for messages: "file 2 (x.json)"
	body   []byte
	ctype  string
	name   string
	result string
	sample verify.Sample
	reason string
}

func (v *Ingest) count(result string) {
	if v.opt.Metrics != nil {
		v.opt.Metrics.Signatures.WithLabelValues(result).Inc()
	}
}

// VerifyIngest implements BodyVerifier.
func (v *Ingest) VerifyIngest(r *http.Request, p keys.Principal, route policy.Route) (Verdict, error) {
	body, err := bufferBody(r)
	if err != nil {
		e := bodyError(err, nil)
		if e.Status == http.StatusRequestEntityTooLarge {
			v.count(SigTooLarge)
			return Verdict{Signature: SigTooLarge}, e
		}
		return Verdict{}, e
	}
	// Forward exactly these bytes.
	replaceBody(r, body)

	var files []*file
	if route.Ingest == "files" {
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			return Verdict{}, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, "/files expects a multipart/form-data body", nil)
		}
		parts, err := verify.SplitMultipart(body, params["boundary"], v.opt.MaxFiles*2)
		if err != nil {
			v.count(SigMalformed)
			return Verdict{Signature: SigMalformed}, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, err.Error(), nil)
		}
		for _, pt := range parts {
			if pt.Name != "data" {
				if readsAsData(pt.Name) {
					v.count(SigMalformed)
					return Verdict{Signature: SigMalformed}, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest,
						"malformed multipart body: a part name that some backends read as \"data\" (another case, spaces, a [] suffix or non-ASCII); name file parts exactly data", nil)
				}
				continue
			}
			files = append(files, &file{label: fmt.Sprintf("file %d (%s)", len(files)+1, pt.FileName), body: pt.Body, ctype: pt.ContentType, name: pt.FileName})
		}
		if len(files) > v.opt.MaxFiles {
			return Verdict{}, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, fmt.Sprintf("at most %d files per request", v.opt.MaxFiles), nil)
		}
	} else {
		files = []*file{{label: "the sample", body: body, ctype: r.Header.Get("Content-Type"), name: r.Header.Get("X-File-Name")}}
	}

	proj, err := v.opt.Projects.Get(r.Context(), p.ProjectID)
	if err != nil {
		return Verdict{}, apierr.Unavailable("the project's HMAC keys are unavailable (key store unreachable), try again shortly", err)
	}
	for _, f := range files {
		v.check(f, p.ProjectID, proj)
	}
	release, err := v.decide(r, p.ProjectID, proj, files)
	overall := summarize(files)
	for _, f := range files {
		v.count(f.result)
	}
	if err != nil {
		return Verdict{Signature: overall}, err
	}
	vd := Verdict{Signature: overall, Release: release}
	for _, f := range files {
		if f.result == SigValid && f.sample.DeviceName != "" {
			vd.Device = f.sample.DeviceName
			break
		}
	}
	if len(files) > 1 {
		vd.Files = make([]string, len(files))
		for i, f := range files {
			vd.Files[i] = f.result
		}
	}
	return vd, nil
}

// check classifies one file: valid, invalid, unsigned, stale or malformed.
func (v *Ingest) check(f *file, pid int64, proj cache.Project) {
	format := verify.DetectFormat(f.ctype, f.name, f.body)
	parse := verify.Parse
	if proj.Keys.Bound() {
		// The device name decides which keys may sign: read it the way no backend can read otherwise.
		parse = verify.ParseFull
	}
	s, err := parse(f.body, format)
	switch {
	case errors.Is(err, verify.ErrNotSample):
		f.result = SigUnsigned
		return
	case err != nil:
		// A body only sniffed as CBOR (octet-stream) that does not parse is some other binary file.
		if mt, _, _ := mime.ParseMediaType(f.ctype); format == verify.FormatCBOR && mt != "application/cbor" && !strings.HasSuffix(strings.ToLower(f.name), ".cbor") {
			f.result = SigUnsigned
			return
		}
		f.result, f.reason = SigMalformed, err.Error()
		return
	}
	f.sample = s
	if !s.Signed() {
		f.result = SigUnsigned
		return
	}
	m, err := proj.Keys.Verify(&s, f.body, proj.Settings.RequireDeviceBoundKeys)
	switch {
	case err == nil:
	case errors.Is(err, verify.ErrUnboundKey):
		f.result = SigUnboundKey
		f.reason = fmt.Sprintf("project %d requires device-bound HMAC keys, and %s is signed with HMAC key %d, which is bound to no device", pid, f.label, m.KeyID)
		return
	case errors.Is(err, verify.ErrBadSignature), errors.Is(err, verify.ErrWrongDevice):
		// Clients without a development HMAC key sign with "0": such a signature proves nothing, so
		// it counts as unsigned rather than forged.
		if _, zerr := s.Verify(f.body, zeroKey); zerr == nil {
			f.result = SigUnsigned
			return
		}
		f.result = SigInvalid
		switch {
		case errors.Is(err, verify.ErrWrongDevice):
			f.result = SigWrongDevice
			f.reason = fmt.Sprintf("signature key is not valid for %s: %s is not signed with an HMAC key of project %d that may sign for it", deviceLabel(s.DeviceName), f.label, pid)
		case proj.Keys.Len() == 0:
			f.reason = fmt.Sprintf("project %d has no HMAC keys to verify the signature of %s", pid, f.label)
		default:
			f.reason = fmt.Sprintf("signature of %s does not match any HMAC key of project %d", f.label, pid)
		}
		return
	default:
		f.result, f.reason = SigMalformed, err.Error()
		return
	}
	if !s.HasIAT {
		if v.opt.RequireIAT {
			f.result, f.reason = SigStale, f.label+" has no protected.iat, and this gateway requires one"
			return
		}
	} else {
		now := float64(v.opt.Now().UnixNano()) / 1e9
		if math.IsNaN(s.IAT) || math.Abs(now-s.IAT) > v.opt.MaxClockSkew.Seconds() {
			f.result = SigStale
			f.reason = fmt.Sprintf("%s was signed at %s, outside the allowed clock skew of %s", f.label,
				time.Unix(int64(s.IAT), 0).UTC().Format(time.RFC3339), v.opt.MaxClockSkew)
			return
		}
	}
	f.result = SigValid
}

func summarize(files []*file) string {
	valid, unsigned := false, false
	for _, f := range files {
		switch f.result {
		case SigValid:
			valid = true
		case SigUnsigned:
			unsigned = true
		default:
			return f.result
		}
	}
	switch {
	case valid:
		return SigValid
	case unsigned:
		return SigUnsigned
	}
	return SigUnsigned
}

// decide turns the per-file results into a refusal or a pass, and records accepted signatures.
func (v *Ingest) decide(r *http.Request, pid int64, proj cache.Project, files []*file) (func(), error) {
	reject := v.opt.Mode == ModeReject
	for _, f := range files {
		switch f.result {
		case SigMalformed:
			if reject {
				return nil, apierr.New(http.StatusBadRequest, apierr.OutcomeBadSignature, f.label+" is not a valid data acquisition file: "+strings.TrimPrefix(f.reason, "malformed sample: "), nil)
			}
			f.result = SigInvalid
		case SigInvalid, SigWrongDevice, SigUnboundKey:
			if reject {
				return nil, apierr.New(http.StatusUnauthorized, apierr.OutcomeBadSignature, f.reason, nil)
			}
		case SigStale:
			return nil, apierr.New(http.StatusUnauthorized, apierr.OutcomeBadSignature, f.reason, nil)
		case SigUnsigned:
			if proj.Settings.RequireSignatures {
				return nil, apierr.New(http.StatusUnauthorized, apierr.OutcomeBadSignature,
					fmt.Sprintf("project %d requires signed samples, and %s is not signed with one of its HMAC keys", pid, f.label), nil)
			}
		}
	}
	// Replay guard last, so nothing is recorded for a request refused above.
	ttl := 2 * v.opt.MaxClockSkew
	var recorded []string
	var guards []verify.ReplayGuard
	release := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for i, sig := range recorded {
			if err := guards[i].Forget(ctx, pid, sig); err != nil {
				v.opt.Log.Warn("replay guard: forget", "project", pid, "err", err)
			}
		}
	}
	for _, f := range files {
		if f.result != SigValid {
			continue
		}
		g := v.opt.Replay
		first, err := g.FirstSeen(r.Context(), pid, f.sample.Signature, ttl)
		if err != nil && v.opt.Fallback != nil {
			g = v.opt.Fallback
			if v.opt.Metrics != nil {
				v.opt.Metrics.ReplayFallback.Inc()
			}
			first, err = g.FirstSeen(r.Context(), pid, f.sample.Signature, ttl)
		}
		if err != nil {
			release()
			return nil, apierr.Unavailable("replay guard unavailable, try again shortly", err)
		}
		if !first {
			f.result = SigReplayed
			release()
			return nil, apierr.New(http.StatusConflict, apierr.OutcomeReplayed, "replayed sample: "+f.label+" was already accepted for project "+fmt.Sprint(pid), nil)
		}
		recorded = append(recorded, f.sample.Signature)
		guards = append(guards, g)
	}
	if len(recorded) == 0 {
		return nil, nil
	}
	return release, nil
}

// readsAsData reports a multipart part name other than "data" that a common backend reads as the
// "data" file, so that keygate would forward it unverified while the backend stores it as a sample
// (a forged one, in a project that requires signatures): another case (ASP.NET's
// IFormFileCollection.GetFile compares names case-insensitively), surrounding spaces or a "[…]"
// suffix (PHP strips leading spaces and reads data[] and data[0] as the "data" array, Rails reads
// data[] as data), and any non-ASCII name (NFKC reads a fullwidth ｄata as data, Unicode case
// folding reads a Kelvin sign as k). Parts with other plain names pass through as before.
func readsAsData(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return true
		}
	}
	n := strings.TrimSpace(name)
	if i := strings.IndexByte(n, '['); i >= 0 {
		n = strings.TrimSpace(n[:i])
	}
	return strings.EqualFold(n, "data")
}
