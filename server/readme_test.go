package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryVariable: every environment variable keygate reads is in the README's
// configuration table (they are the product's interface).
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for name := range configEnvNames() {
		if !strings.Contains(readme, "| `"+name+"` |") {
			t.Errorf("%s is not in the README's configuration table", name)
		}
	}
}

// TestREADMETableMatchesConfig: the configuration table names only variables keygate reads, each
// once, with the default config.go gives it ("(empty…)" for none), so a changed default or a
// removed variable cannot leave the table behind.
func TestREADMETableMatchesConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := readmeConfigRows(string(b))
	if len(rows) == 0 {
		t.Fatal("no configuration table rows found in README.md")
	}
	defaults := map[string]string{}
	for _, v := range Variables() {
		defaults[v.Name] = v.Default
	}
	seen := map[string]bool{}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if seen[r.name] {
				t.Errorf("%s has more than one row", r.name)
			}
			seen[r.name] = true
			want, ok := defaults[r.name]
			if !ok {
				t.Fatalf("%s is in the README's table but not in Config", r.name)
			}
			got := r.def
			if strings.HasPrefix(got, "(empty") {
				got = ""
			} else {
				got = strings.Trim(got, "`")
			}
			if got != want {
				t.Errorf("README default %q, config.go envDefault %q", r.def, want)
			}
		})
	}
}

type readmeRow struct{ name, def string }

// readmeConfigRows returns the `| `KEYGATE_…` | default | meaning |` rows of the README.
func readmeConfigRows(readme string) []readmeRow {
	var rows []readmeRow
	for _, line := range strings.Split(readme, "\n") {
		if !strings.HasPrefix(line, "| `KEYGATE_") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 3 {
			continue
		}
		rows = append(rows, readmeRow{name: strings.Trim(strings.TrimPrefix(cells[0], "| "), "`"), def: cells[1]})
	}
	return rows
}
