package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RunNode runs `node script` in dir (a testdata folder whose pinned packages `make deps` installs
// with npm ci), feeds it in as JSON on stdin and decodes its JSON stdout into out. The
// differential tests use it to ask a real JavaScript parser how it reads what keygate judged. A
// missing node or module fails the test: `make deps` installs both, so their absence is a broken
// setup, never a reason to skip.
func RunNode(t testing.TB, dir, module, script string, in, out any) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: run `make deps` (%s's differential test needs node and %s)", script, module)
	}
	abs, _ := filepath.Abs(dir)
	if _, err := os.Stat(filepath.Join(abs, "node_modules", module, "package.json")); err != nil {
		t.Fatalf("%s is not installed in %s: run `make deps` (npm ci there)", module, abs)
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script)
	cmd.Dir = abs
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v: %s", script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("node %s output: %v", script, err)
	}
}
