package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/verify"
)

// readSample reads the one FILE argument (- for stdin) and decides its format: --format, else the
// file's name or first byte (verify.FileFormat).
func readSample(fs *flag.FlagSet, format string) (string, []byte, verify.Format, error) {
	if fs.NArg() != 1 {
		return "", nil, 0, usagef("want exactly one FILE (or - for stdin)")
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
		return "", nil, 0, fmt.Errorf("read %s: %w", name, err)
	}
	f, err := verify.ChooseFormat(name, b, format)
	if err != nil {
		return "", nil, 0, usagef("%v", err)
	}
	return name, b, f, nil
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
	ks := make([][]byte, len(hmacKeys))
	for i, k := range hmacKeys {
		ks[i] = []byte(k)
	}
	v, err := verify.Check(body, f, ks, time.Now(), *skew)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintln(stdout, v.Describe(name, f, len(ks), *skew))
	if !v.OK() {
		return silentError{1}
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
