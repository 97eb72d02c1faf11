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
