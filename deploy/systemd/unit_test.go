// Package systemd holds keygate's systemd unit (keygate.service); its test checks that the unit
// loads and that docs/deploy.md quotes it verbatim.
package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "keygate.service"

type directive struct {
	section, key, value string
	line                int
}

// parseUnit reads a unit file as systemd does for the subset keygate uses: [Section] headers,
// Key=Value lines, comments (# or ;) only on lines of their own. It reports lines it cannot read.
func parseUnit(text string) (ds []directive, problems []string) {
	section := ""
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && l[len(l)-1] == ']':
			section = l[1 : len(l)-1]
		case strings.HasSuffix(l, `\`):
			problems = append(problems, "line "+strconv.Itoa(i+1)+": continuation lines are not used here")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				problems = append(problems, "line "+strconv.Itoa(i+1)+": not Key=Value in a section: "+l)
				continue
			}
			ds = append(ds, directive{section, strings.TrimSpace(k), strings.TrimSpace(v), i + 1})
		}
	}
	return ds, problems
}

var trailingComment = regexp.MustCompile(`\s[#;]`)

// unitProblems lists what would stop the unit from working as documented.
func unitProblems(text string, configVars map[string]bool) []string {
	ds, problems := parseUnit(text)
	get := map[string][]string{}
	for _, d := range ds {
		get[d.section+"."+d.key] = append(get[d.section+"."+d.key], d.value)
		if trailingComment.MatchString(d.value) {
			problems = append(problems, "line "+strconv.Itoa(d.line)+": a comment after a value becomes part of the value: "+d.key+"="+d.value)
		}
	}
	one := func(k string) string {
		if v := get[k]; len(v) == 1 {
			return v[0]
		}
		problems = append(problems, k+": want exactly one")
		return ""
	}
	if f := strings.Fields(one("Service.ExecStart")); len(f) != 2 || !filepath.IsAbs(f[0]) || f[1] != "serve" {
		problems = append(problems, "ExecStart must run an absolute path to keygate with `serve`")
	}
	sd := one("Service.StateDirectory")
	if sd == "" || filepath.IsAbs(sd) || strings.Contains(sd, "..") {
		problems = append(problems, "StateDirectory must be relative to /var/lib: "+sd)
	}
	dataDir := ""
	for _, env := range get["Service.Environment"] {
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "KEYGATE_") && !configVars[k] {
				problems = append(problems, "Environment: "+k+" is not a keygate variable")
			}
			if k == "KEYGATE_DATA_DIR" {
				dataDir = v
			}
		}
	}
	if dataDir != "/var/lib/"+sd {
		problems = append(problems, "KEYGATE_DATA_DIR="+dataDir+" is not the StateDirectory /var/lib/"+sd)
	}
	if d, err := time.ParseDuration(one("Service.TimeoutStopSec") + "s"); err != nil || d < 30*time.Second {
		problems = append(problems, "TimeoutStopSec must exceed the 25 s drain plus 5 s")
	}
	if one("Service.EnvironmentFile") != "/etc/keygate/env" {
		problems = append(problems, "EnvironmentFile must be /etc/keygate/env (docs/deploy.md says so)")
	}
	if one("Install.WantedBy") != "multi-user.target" {
		problems = append(problems, "WantedBy=multi-user.target missing")
	}
	return problems
}

// readmeVars lists the variables in the README's configuration table (itself checked against the
// configuration struct by the server's tests).
func readmeVars(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(KEYGATE_[A-Z0-9_]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		vars[m[1]] = true
	}
	if !vars["KEYGATE_DATA_DIR"] {
		t.Fatal("README's configuration table not found")
	}
	return vars
}

// analyze runs systemd-analyze verify on a copy of the unit whose ExecStart names an executable
// that exists here (the test binary), and returns its complaints about the unit.
func analyze(t *testing.T, bin, text string) []string {
	t.Helper()
	text = regexp.MustCompile(`(?m)^ExecStart=\S+`).ReplaceAllString(text, "ExecStart="+os.Args[0])
	path := filepath.Join(t.TempDir(), unitFile)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "verify", "--man=no", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var complaints []string
	for _, l := range strings.Split(out.String(), "\n") {
		// systemd-analyze exits 0 on warnings such as an ignored absolute StateDirectory=, so every
		// line that names the unit counts.
		if strings.Contains(l, unitFile) {
			complaints = append(complaints, l)
		}
	}
	if err != nil {
		complaints = append(complaints, "systemd-analyze: "+err.Error()+": "+out.String())
	}
	return complaints
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	vars := readmeVars(t)
	analyzer, _ := exec.LookPath("systemd-analyze")

	t.Run("loads", func(t *testing.T) {
		for _, p := range unitProblems(unit, vars) {
			t.Error(p)
		}
		if analyzer == "" {
			t.Log("systemd-analyze is not installed: the unit was checked by the parser only")
			return
		}
		for _, c := range analyze(t, analyzer, unit) {
			t.Error(c)
		}
	})

	// The checks catch the mistakes the unit once had.
	broken := []struct{ name, old, new string }{
		{"comment after a value", "EnvironmentFile=/etc/keygate/env\n", "EnvironmentFile=/etc/keygate/env    # KEYGATE_* variables\n"},
		{"absolute StateDirectory", "StateDirectory=keygate\n", "StateDirectory=/var/lib/keygate\n"},
		{"data dir elsewhere", "KEYGATE_DATA_DIR=/var/lib/keygate\n", "KEYGATE_DATA_DIR=/srv/keygate\n"},
		{"unknown variable", "KEYGATE_DATA_DIR=/var/lib/keygate\n", "KEYGATE_DATA_DIR=/var/lib/keygate KEYGATE_DATADIR=/x\n"},
		{"short stop timeout", "TimeoutStopSec=35\n", "TimeoutStopSec=10\n"},
	}
	for _, tt := range broken {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			if !strings.Contains(unit, tt.old) {
				t.Fatalf("the unit has no %q to break", tt.old)
			}
			bad := strings.Replace(unit, tt.old, tt.new, 1)
			if len(unitProblems(bad, vars)) == 0 {
				t.Error("the parser accepts it")
			}
		})
	}
	if analyzer != "" {
		t.Run("systemd-analyze refuses an absolute StateDirectory", func(t *testing.T) {
			if len(analyze(t, analyzer, strings.Replace(unit, "StateDirectory=keygate\n", "StateDirectory=/var/lib/keygate\n", 1))) == 0 {
				t.Error("systemd-analyze complaints are not detected")
			}
		})
	}

	t.Run("docs quote it", func(t *testing.T) {
		doc, err := os.ReadFile("../../docs/deploy.md")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), "```ini\n"+unit+"```\n") {
			t.Error("docs/deploy.md does not quote deploy/systemd/keygate.service verbatim in an ```ini block")
		}
	})
}
