package server

import (
	_ "embed"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
)

// configSource is this package's config.go: `keygate serve --help` reads the variables' meanings
// from the Config struct's own doc comments, so the help cannot drift from the code.
//
//go:embed config.go
var configSource string

// Variable is one KEYGATE_* environment variable read by `keygate serve`.
type Variable struct {
	// Name is the variable (KEYGATE_CACHE_TTL), Field the Go field it fills (CacheTTL).
	Name, Field string
	// Default is the value used when the variable is unset ("" when there is none).
	Default string
	// Doc is the meaning, from the field's doc comment.
	Doc string
	// Form is the expected form of a value ("a duration such as 30s").
	Form string
}

var variables = sync.OnceValue(loadVariables)

// Variables lists every variable of Config in declaration order.
func Variables() []Variable { return variables() }

func loadVariables() []Variable {
	docs := fieldDocs()
	var out []Variable
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			tag := f.Tag.Get("env")
			if tag == "" {
				continue
			}
			out = append(out, Variable{
				Name: strings.Split(tag, ",")[0], Field: f.Name, Default: f.Tag.Get("envDefault"),
				Doc: docs[f.Name], Form: formOf(f.Type),
			})
		}
	}
	walk(reflect.TypeOf(Config{}))
	return out
}

// fieldDocs maps each field of Config and StoreConfig to its doc comment; a field without its own
// shares the comment of the group above it (fields declared together under one comment).
func fieldDocs() map[string]string {
	docs := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", configSource, parser.ParseComments)
	if err != nil {
		return docs
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		last := ""
		for _, fld := range st.Fields.List {
			doc := strings.Join(strings.Fields(fld.Doc.Text()), " ")
			if doc == "" {
				doc = last
			}
			last = doc
			for _, name := range fld.Names {
				docs[name.Name] = doc
			}
		}
		return false
	})
	return docs
}

// formOf is the expected form of a value of type t, for error messages and the help.
func formOf(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "a duration with a unit, such as 30s, 5m or 1h"
	case reflect.TypeOf(ByteSize(0)):
		return "a size such as 100MB, 512KiB or 2000000"
	case reflect.TypeOf(Lifetime(0)):
		return "a duration such as 90d or 720h"
	case reflect.TypeOf(LimitValue{}):
		return `a rate limit "RATE/UNIT [burst N]" (UNIT s, m or h) or "off"`
	case reflect.TypeOf(CIDRList(nil)):
		return "a comma-separated list of CIDRs or addresses, such as 10.0.0.0/8,192.0.2.1"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Slice:
		return "a comma-separated list"
	}
	return "a string"
}

// configError turns caarlos0/env's aggregate error into one ConfigError naming each variable, the
// value it has and the form expected (instead of the Go field and type).
func configError(err error) error {
	var agg env.AggregateError
	errs := []error{err}
	if errors.As(err, &agg) {
		errs = agg.Errors
	}
	byField := map[string]Variable{}
	for _, v := range Variables() {
		byField[v.Field] = v
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if v, ok := byField[pe.Name]; ok {
				msg := fmt.Sprintf("%s: want %s, got %q", v.Name, v.Form, os.Getenv(v.Name))
				if !isStrconv(pe.Err) {
					msg += " (" + pe.Err.Error() + ")"
				}
				msgs = append(msgs, msg)
				continue
			}
		}
		msgs = append(msgs, e.Error())
	}
	return ConfigError{"configuration: " + strings.Join(msgs, "; ")}
}

// isStrconv: a standard parser's error ("time: missing unit in duration") says nothing the form
// does not; a custom type's own message is kept.
func isStrconv(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "time: ") || strings.HasPrefix(s, "strconv.") || strings.HasPrefix(s, "unable to parse")
}

// UnknownVariables returns, for each KEYGATE_* variable in environ that keygate does not read, the
// known name closest to it (by edit distance), sorted by name.
func UnknownVariables(environ []string) [][2]string {
	known := map[string]bool{}
	for _, v := range Variables() {
		known[v.Name] = true
	}
	var out [][2]string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "KEYGATE_") || known[name] || strings.HasPrefix(name, "KEYGATE_TEST_") {
			continue
		}
		best, bestD := "", 1<<30
		for _, v := range Variables() {
			if d := editDistance(name, v.Name); d < bestD {
				best, bestD = v.Name, d
			}
		}
		out = append(out, [2]string{name, best})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// WarnUnknownVariables logs one warning per unknown KEYGATE_* variable (a misspelt name would
// otherwise be ignored silently).
func WarnUnknownVariables(log *slog.Logger, environ []string) {
	for _, u := range UnknownVariables(environ) {
		log.Warn("unknown configuration variable "+u[0]+" is ignored; did you mean "+u[1]+"?", "variable", u[0], "closest", u[1])
	}
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// WriteUsage writes every variable with its default and meaning (`keygate serve --help`).
func WriteUsage(w io.Writer) {
	fmt.Fprintln(w, "keygate serve: run the gateway. It is configured by these environment variables:")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range Variables() {
		def := v.Default
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s\tdefault %s\t%s\n", v.Name, def, v.Doc)
	}
	_ = tw.Flush()
}
