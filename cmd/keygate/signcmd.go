package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/verify"
)

// formatOf resolves --format or the file extension.
func formatOf(flagValue, file string, body []byte) (verify.Format, error) {
	switch strings.ToLower(flagValue) {
	case "json":
		return verify.FormatJSON, nil
	case "cbor":
		return verify.FormatCBOR, nil
	case "":
	default:
		return 0, usagef("--format: want json or cbor, got %q", flagValue)
	}
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		return verify.FormatJSON, nil
	case ".cbor":
		return verify.FormatCBOR, nil
	}
	if f := verify.DetectFormat("", "", body); f != verify.FormatUnknown {
		return f, nil
	}
	if len(body) > 0 && (body[0] == '{' || body[0] == ' ' || body[0] == '\n') {
		return verify.FormatJSON, nil
	}
	return 0, usagef("cannot tell whether %s is JSON or CBOR: name it .json or .cbor, or pass --format", file)
}

// argReader is the part of a FlagSet that names the input file.
type argReader interface {
	Arg(int) string
	NArg() int
}

// readSample reads FILE (or stdin) and decides its format.
func readSample(fs argReader, format string) (string, []byte, verify.Format, error) {
	name, body, err := readInput(fs)
	if err != nil {
		return "", nil, 0, err
	}
	f, err := formatOf(format, name, body)
	return name, body, f, err
}

func readInput(fs argReader) (string, []byte, error) {
	if fs.NArg() != 1 {
		return "", nil, usagef("want exactly one FILE (or - for stdin)")
	}
	name := fs.Arg(0)
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	return name, b, nil
}

// runSign signs a data acquisition file like the platform's signers do.
func runSign(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("sign")
	key := fs.String("hmac-key", "", "the HMAC key (required; clients without one use \"0\")")
	iat := fs.String("iat", "now", "protected.iat: now, none, or seconds since the epoch")
	format := fs.String("format", "", "json or cbor (default: from the file's extension)")
	if err := parseFlags(fs, args, "--hmac-key K [--iat now|none|SECONDS] [--format json|cbor] FILE"); err != nil {
		return err
	}
	if *key == "" {
		return usagef("sign: --hmac-key is required")
	}
	_, body, f, err := readSample(fs, *format)
	if err != nil {
		return err
	}
	var o verify.SignOptions
	switch *iat {
	case "none":
	case "now":
		o.HasIAT, o.IAT = true, time.Now().Unix()
	default:
		n, err := strconv.ParseInt(*iat, 10, 64)
		if err != nil {
			return usagef("sign: --iat: want now, none or seconds since the epoch, got %q", *iat)
		}
		o.HasIAT, o.IAT = true, n
	}
	out, err := verify.Sign(body, f, []byte(*key), o)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// runVerify checks one signed file and says what it found.
func runVerify(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("verify")
	var hmacKeys multiFlag
	fs.Var(&hmacKeys, "hmac-key", "an HMAC key to try (repeat for several)")
	format := fs.String("format", "", "json or cbor (default: from the file's extension)")
	skew := fs.Duration("max-clock-skew", 0, "also require iat within this of now (0: do not check)")
	if err := parseFlags(fs, args, "--hmac-key K [--hmac-key K2 …] [--format json|cbor] FILE"); err != nil {
		return err
	}
	if len(hmacKeys) == 0 {
		return usagef("verify: --hmac-key is required")
	}
	name, body, f, err := readSample(fs, *format)
	if err != nil {
		return err
	}
	s, err := verify.Parse(body, f)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !s.Signed() {
		fmt.Fprintf(stdout, "%s: unsigned (alg %s)\n", name, s.Alg)
		return silentError{1}
	}
	ks := make([][]byte, len(hmacKeys))
	for i, k := range hmacKeys {
		ks[i] = []byte(k)
	}
	i, err := s.Verify(body, ks)
	if errors.Is(err, verify.ErrBadSignature) {
		fmt.Fprintf(stdout, "%s: INVALID: the signature matches none of the %d key(s)\n", name, len(ks))
		return silentError{1}
	}
	if err != nil {
		return err
	}
	when := "no iat"
	if s.HasIAT {
		t := time.Unix(int64(s.IAT), 0).UTC()
		when = "signed at " + t.Format(time.RFC3339)
		if *skew > 0 && (time.Since(t) > *skew || time.Until(t) > *skew) {
			fmt.Fprintf(stdout, "%s: valid signature (key %d) but STALE: %s is outside %s of now\n", name, i+1, when, *skew)
			return silentError{1}
		}
	}
	fmt.Fprintf(stdout, "%s: valid (%s, key %d, %s, device %q)\n", name, f, i+1, when, s.DeviceName)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runSettings shows or changes a project's settings.
var runSettings = subcommands("settings", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
	"show": settingsShow, "set": settingsSet,
}, []string{"show", "set"})

func settingsShow(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("settings show")
	project := projectFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		ps, err := s.Settings(ctx, pid)
		if err != nil {
			return err
		}
		return printSettings(stdout, pid, ps, *asJSON)
	})
}

func printSettings(w io.Writer, pid int64, ps keys.ProjectSettings, asJSON bool) error {
	if asJSON {
		return writeJSON(w, ps)
	}
	fmt.Fprintf(w, "project %d\n  require signatures: %v\n  require device-bound keys: %v\n", pid, ps.RequireSignatures, ps.RequireDeviceBoundKeys)
	if !ps.Limit.IsZero() {
		fmt.Fprintf(w, "  rate limit (project): %s\n", formatLimit(ps.Limit))
	}
	for id, l := range ps.KeyLimits {
		fmt.Fprintf(w, "  rate limit (key %d): %s\n", id, formatLimit(l))
	}
	return nil
}

func settingsSet(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("settings set")
	project := projectFlag(fs)
	reqSig := fs.String("require-signatures", "", "true: refuse unsigned ingestion files for this project; false: allow them")
	reqBound := fs.String("require-device-bound-keys", "", "true: refuse samples signed with an HMAC key bound to no device; false: accept them")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	if *reqSig == "" && *reqBound == "" {
		return usagef("settings set: nothing to set (try --require-signatures=true or --require-device-bound-keys=true)")
	}
	parse := func(flag, v string) (*bool, error) {
		if v == "" {
			return nil, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, usagef("settings set: --%s: want true or false", flag)
		}
		return &b, nil
	}
	sig, err := parse("require-signatures", *reqSig)
	if err != nil {
		return err
	}
	bound, err := parse("require-device-bound-keys", *reqBound)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		ps, err := s.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error {
			if sig != nil {
				ps.RequireSignatures = *sig
			}
			if bound != nil {
				ps.RequireDeviceBoundKeys = *bound
			}
			return nil
		})
		if err != nil {
			return err
		}
		return printSettings(stdout, pid, ps, false)
	})
}
