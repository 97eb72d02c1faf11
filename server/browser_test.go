package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found (make test installs Debian's chromium package)")
	return ""
}

// artifactDir is where browser tests leave screenshots (KEYGATE_TEST_ARTIFACTS, else bin/artifacts).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KEYGATE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "bin", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startBrowser starts headless Chromium with a profile in the test's temporary directory and returns
// its chromedp context. When the test ends it kills the browser's whole process group and waits until
// none of those processes is left: killing only the main process (what chromedp does) leaves its
// children — the storage service among them — writing the profile while TempDir's cleanup removes
// it ("unlinkat …/Default: directory not empty").
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	profile := t.TempDir() // registered first, so removed after the cleanup below has run
	var browser atomic.Pointer[exec.Cmd]
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own process group, so one signal reaches every process the browser forks.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			browser.Store(cmd)
		}),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp v0.14 does not know newer CDP events (dialogs' top layer) and reports them; drop those.
	quiet := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled") {
			t.Log(msg)
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(quiet))
	t.Cleanup(func() {
		cancel()
		cancelA() // kills the group (cmd.Cancel) and waits for the main process
		cmd := browser.Load()
		if cmd == nil || cmd.Process == nil {
			return // never started
		}
		// The group's id is the main process's pid. If the browser had died on its own, Cancel was not
		// called: signal what is left of the group now.
		g := cmd.Process.Pid
		if groupAlive(g) {
			_ = syscall.Kill(-g, syscall.SIGKILL)
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return !groupAlive(g) },
			"Chromium's processes (group %d) still running after the kill", g)
	})
	return ctx
}

// groupAlive reports whether a process of group pgid is still running. Zombies do not count: they
// write nothing, and in a container without an init that reaps orphans they never go away.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited while we looked
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its closing paren.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			return true
		}
	}
	return false
}

// TestKeysPageInBrowser drives the Keys page in real headless Chromium against keygate serve with a
// real Redis store: sign in, create keys, watch the development flag move, add and delete an HMAC
// key, revoke a key and see the gateway refuse it, and a read-only key refused at sign-in.
func TestKeysPageInBrowser(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	g := startGateway(t, sc, up.URL, func(c *Config) { c.LastUsedInterval = 50 * time.Millisecond })
	adminKey, adminRec := mkKey(t, store, 1, keys.RoleAdmin)
	roKey, _ := mkKey(t, store, 1, keys.RoleReadOnly)
	otherKey, _ := mkKey(t, store, 2, keys.RoleAdmin)

	// The page's own headers.
	res, err := http.Get(g.studio + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for h, want := range map[string]string{
		"Content-Security-Policy": admin.PageCSP, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /keys: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res, err := http.Get(g.studio + "/keys/favicon.svg"); err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("favicon: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	ctx := startBrowser(t)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	run := func(step string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var shot []byte
			sctx, c := context.WithTimeout(ctx, 5*time.Second)
			if chromedp.Run(sctx, chromedp.FullScreenshot(&shot, 100)) == nil {
				os.WriteFile(filepath.Join(artifactDir(t), "keys-page-failure.png"), shot, 0o644)
			}
			c()
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	eval := func(js string, out any) {
		t.Helper()
		run("eval "+js, chromedp.Evaluate(js, out))
	}

	// Sign-in errors say what to do: a read-only key, another project's key, an unknown key.
	run("read-only sign-in",
		chromedp.Navigate(g.studio+"/keys"),
		chromedp.WaitVisible("#signin-form", chromedp.ByQuery),
		chromedp.SendKeys("#signin-project", "1", chromedp.ByQuery),
		chromedp.SendKeys("#signin-key", roKey, chromedp.ByQuery),
		chromedp.Click(`#signin-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#signin-error", chromedp.ByQuery),
	)
	if msg := text("#signin-error"); !strings.Contains(msg, "This key is read-only; sign in with an Admin key") {
		t.Errorf("read-only sign-in error: %q", msg)
	}
	var favicon string
	eval(`document.querySelector('link[rel=icon]').href`, &favicon)
	if !strings.HasSuffix(favicon, "/keys/favicon.svg") {
		t.Errorf("favicon link %q", favicon)
	}
	signInError := func(key string) string {
		t.Helper()
		run("sign-in with "+key[:8],
			chromedp.Evaluate(`document.getElementById('signin-error').hidden = true; document.getElementById('signin-key').value = ''`, nil),
			chromedp.SendKeys("#signin-key", key, chromedp.ByQuery),
			chromedp.Click(`#signin-form button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible("#signin-error", chromedp.ByQuery),
		)
		return text("#signin-error")
	}
	if msg := signInError(otherKey); !strings.Contains(msg, "belongs to project 2, not project 1") {
		t.Errorf("other project's key: %q", msg)
	}
	unknown, _ := keys.GenerateAPIKey()
	if msg := signInError(unknown); !strings.Contains(msg, "does not know this API key") || strings.Contains(msg, "unknown or revoked") {
		t.Errorf("unknown key: %q", msg)
	}
	var stored string
	eval(`sessionStorage.getItem('keygate.key') || ''`, &stored)
	if stored != "" {
		t.Error("a refused key stayed in sessionStorage")
	}

	// The admin key signs in; the project has no development keys yet.
	run("admin sign-in",
		chromedp.Evaluate(`document.getElementById('signin-key').value = ''`, nil),
		chromedp.SendKeys("#signin-key", adminKey, chromedp.ByQuery),
		chromedp.Click(`#signin-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#app", chromedp.ByQuery),
		chromedp.WaitVisible("#nodev", chromedp.ByQuery),
	)
	if msg := text("#nodev"); !strings.Contains(msg, "You don't have any development keys set") {
		t.Errorf("no-dev-keys notice: %q", msg)
	}
	eval(`sessionStorage.getItem('keygate.key') || ''`, &stored)
	if stored != adminKey {
		t.Error("the admin key is not kept in sessionStorage")
	}

	// Create an admin key: shown once, whole, with a copy button; the table shows only its prefix.
	var newKey string
	run("create admin key",
		chromedp.Click("#apikey-add", chromedp.ByQuery),
		chromedp.WaitVisible("#apikey-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#apikey-name", "ci admin", chromedp.ByQuery),
		chromedp.Click("#role-admin", chromedp.ByQuery),
		chromedp.Click("#apikey-create", chromedp.ByQuery),
		chromedp.WaitVisible("#newkey", chromedp.ByQuery),
		chromedp.Value("#newkey-value", &newKey, chromedp.ByQuery),
	)
	if !regexp.MustCompile(`^ei_[0-9a-f]{64}$`).MatchString(newKey) {
		t.Fatalf("new key shown as %q", newKey)
	}
	if msg := text("#newkey"); !strings.Contains(msg, "you will not see it again") {
		t.Errorf("reveal text: %q", msg)
	}
	if table := text("#apikeys-table"); strings.Contains(table, newKey) || !strings.Contains(table, newKey[:11]) {
		t.Error("the table must show the new key's prefix, not the whole key")
	}
	if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", newKey, nil); r.status != 200 {
		t.Fatalf("the new key does not work at the gateway: %d", r.status)
	}
	run("dismiss", chromedp.Click("#newkey-done", chromedp.ByQuery), chromedp.WaitNotVisible("#newkey", chromedp.ByQuery))

	// A development ingestion key from the notice, then a second one: the flag moves.
	run("create dev key 1",
		chromedp.Click("#nodev-create", chromedp.ByQuery),
		chromedp.WaitVisible("#apikey-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#apikey-name", "dev one", chromedp.ByQuery),
		chromedp.Click("#apikey-create", chromedp.ByQuery),
		chromedp.WaitVisible("#newkey", chromedp.ByQuery),
		chromedp.WaitNotVisible("#nodev", chromedp.ByQuery),
	)
	devRows := func() []string {
		var names []string
		eval(`Array.from(document.querySelectorAll('#apikeys-table tbody tr')).filter(r => Array.from(r.querySelectorAll('.badge')).some(b => b.textContent === 'Development key')).map(r => r.cells[0].firstChild.textContent + '|' + r.cells[1].textContent)`, &names)
		return names
	}
	if got := devRows(); len(got) != 1 || got[0] != "dev one|Ingestion" {
		t.Errorf("development keys after the first: %v", got)
	}
	run("create dev key 2",
		chromedp.Click("#newkey-done", chromedp.ByQuery),
		chromedp.Click("#apikey-add", chromedp.ByQuery),
		chromedp.WaitVisible("#apikey-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#apikey-name", "dev two", chromedp.ByQuery),
		chromedp.Click("#role-ingestiononly", chromedp.ByQuery),
		chromedp.Click("#apikey-dev", chromedp.ByQuery),
		chromedp.Click("#apikey-create", chromedp.ByQuery),
		chromedp.WaitVisible("#newkey", chromedp.ByQuery),
		chromedp.Click("#newkey-done", chromedp.ByQuery),
	)
	if got := devRows(); len(got) != 1 || got[0] != "dev two|Ingestion" {
		t.Errorf("development keys after the second: %v (the flag must move)", got)
	}

	// HMAC key: generate, add as development key, then delete with confirmation.
	var hmacValue string
	run("add hmac key",
		chromedp.Click("#hmac-add", chromedp.ByQuery),
		chromedp.WaitVisible("#hmac-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#hmac-name", "device fleet", chromedp.ByQuery),
		chromedp.Click("#hmac-generate", chromedp.ByQuery),
		chromedp.Value("#hmac-key", &hmacValue, chromedp.ByQuery),
		chromedp.Click("#hmac-dev", chromedp.ByQuery),
		chromedp.Click("#hmac-create", chromedp.ByQuery),
		chromedp.WaitNotVisible("#hmac-dialog", chromedp.ByQuery),
	)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hmacValue) {
		t.Errorf("generated HMAC key %q", hmacValue)
	}
	if table := text("#hmackeys-table"); !strings.Contains(table, hmacValue) || !strings.Contains(table, "Development key") {
		t.Errorf("HMAC table: %q", table)
	}
	if list, _ := store.ListHMACKeys(context.Background(), 1); len(list) != 1 || list[0].Secret != hmacValue {
		t.Errorf("store has %+v", list)
	}
	var shot []byte
	run("screenshot", chromedp.FullScreenshot(&shot, 100))
	if len(shot) < 1000 {
		t.Fatal("empty screenshot")
	}
	if err := os.WriteFile(filepath.Join(artifactDir(t), "keys-page.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	run("delete hmac key",
		chromedp.Click(`button[aria-label="Delete HMAC key device fleet"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-dialog", chromedp.ByQuery),
	)
	if msg := text("#confirm-text"); !strings.Contains(msg, `"device fleet"`) {
		t.Errorf("confirmation does not name the key: %q", msg)
	}
	run("confirm delete", chromedp.Click("#confirm-ok", chromedp.ByQuery), chromedp.WaitNotVisible("#confirm-dialog", chromedp.ByQuery),
		chromedp.WaitVisible("#hmackeys-empty", chromedp.ByQuery))

	// Device-bound HMAC keys: bind a new key to devices, see the binding, filter by device, and
	// require bound keys for the project.
	addBound := func(name, devices string) {
		t.Helper()
		run("add bound hmac key "+name,
			chromedp.Click("#hmac-add", chromedp.ByQuery),
			chromedp.WaitVisible("#hmac-dialog", chromedp.ByQuery),
			chromedp.SendKeys("#hmac-name", name, chromedp.ByQuery),
			chromedp.Click("#hmac-generate", chromedp.ByQuery),
			chromedp.SendKeys("#hmac-devices", devices, chromedp.ByQuery),
			chromedp.Click("#hmac-create", chromedp.ByQuery),
			chromedp.WaitNotVisible("#hmac-dialog", chromedp.ByQuery),
		)
	}
	addBound("line three", "cam-1, line-3-*")
	addBound("dev b", "dev-b")
	run("add unbound hmac key",
		chromedp.Click("#hmac-add", chromedp.ByQuery),
		chromedp.WaitVisible("#hmac-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#hmac-name", "fleet", chromedp.ByQuery),
		chromedp.Click("#hmac-generate", chromedp.ByQuery),
		chromedp.Click("#hmac-create", chromedp.ByQuery),
		chromedp.WaitNotVisible("#hmac-dialog", chromedp.ByQuery),
	)
	list, err := store.ListHMACKeys(context.Background(), 1)
	if err != nil || len(list) != 3 || !slices.Equal(list[0].Devices, []string{"cam-1", "line-3-*"}) || !slices.Equal(list[1].Devices, []string{"dev-b"}) || list[2].Bound() {
		t.Errorf("store has %+v (%v)", list, err)
	}
	visible := func() []string {
		var names []string
		eval(`Array.from(document.querySelectorAll('#hmackeys-table tbody tr')).filter(r => !r.hidden).map(r => r.cells[0].firstChild.textContent + '|' + r.cells[2].textContent)`, &names)
		return names
	}
	if got := visible(); !slices.Equal(got, []string{"line three|cam-1line-3-*", "dev b|dev-b", "fleet|Any device"}) {
		t.Errorf("HMAC rows with devices: %q", got)
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"line-3-07", []string{"line three|cam-1line-3-*"}},
		{"dev-b", []string{"dev b|dev-b"}},
		{"cam", []string{"line three|cam-1line-3-*"}},
		{"nobody", nil},
	} {
		run("filter "+tc.filter, chromedp.Evaluate(`document.getElementById('hmac-filter').value = ''`, nil), chromedp.SendKeys("#hmac-filter", tc.filter, chromedp.ByQuery))
		if got := visible(); !slices.Equal(got, tc.want) {
			t.Errorf("filter %q shows %q, want %q", tc.filter, got, tc.want)
		}
	}
	if msg := text("#hmac-filter-none"); !strings.Contains(msg, "No HMAC key is bound") {
		t.Errorf("empty filter result says %q", msg)
	}
	run("clear filter", chromedp.Evaluate(`document.getElementById('hmac-filter').value = 'x'`, nil), chromedp.SendKeys("#hmac-filter", "\b", chromedp.ByQuery))
	if got := visible(); len(got) != 3 {
		t.Errorf("after clearing the filter: %q", got)
	}
	var devShot []byte
	run("screenshot with devices", chromedp.FullScreenshot(&devShot, 100))
	os.WriteFile(filepath.Join(artifactDir(t), "keys-page-devices.png"), devShot, 0o644)
	run("require bound keys", chromedp.Click("#require-bound", chromedp.ByQuery))
	testutil.Eventually(t, 5*time.Second, func() bool {
		ps, err := store.Settings(context.Background(), 1)
		return err == nil && ps.RequireDeviceBoundKeys
	}, "the checkbox did not set requireDeviceBoundKeys")
	var checked bool
	run("reload", chromedp.Reload(), chromedp.WaitVisible("#app", chromedp.ByQuery))
	testutil.Eventually(t, 5*time.Second, func() bool {
		eval(`document.getElementById('require-bound').checked`, &checked)
		return checked
	}, "the page does not show requireDeviceBoundKeys after a reload")

	// Lifecycle: a key with an expiry, a roll with the grace chosen, an existing key made the
	// development key, last use with its address, and the audit trail.
	run("create expiring key",
		chromedp.Click("#apikey-add", chromedp.ByQuery),
		chromedp.WaitVisible("#apikey-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#apikey-name", "month", chromedp.ByQuery),
		chromedp.Click("#role-readonly", chromedp.ByQuery),
		chromedp.SetValue("#apikey-expiry", "custom", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById('apikey-expiry').dispatchEvent(new Event('change'))`, nil),
		chromedp.WaitVisible("#apikey-expiry-days", chromedp.ByQuery),
		chromedp.SendKeys("#apikey-expiry-days", "45", chromedp.ByQuery),
		chromedp.Click("#apikey-create", chromedp.ByQuery),
		chromedp.WaitVisible("#newkey", chromedp.ByQuery),
		chromedp.Click("#newkey-done", chromedp.ByQuery),
	)
	var monthExpires string
	eval(`Array.from(document.querySelectorAll('#apikeys-table tbody tr')).find(r => r.cells[0].firstChild.textContent === 'month').cells[4].textContent`, &monthExpires)
	if monthExpires == "" || monthExpires == "Never" {
		t.Errorf("expires cell of the 45-day key: %q", monthExpires)
	}
	if list, _ := store.ListAPIKeys(context.Background(), 1); true {
		for _, k := range list {
			if k.Name == "month" && (k.Expires.IsZero() || k.Expires.Sub(k.Created) != 45*24*time.Hour) {
				t.Errorf("the 45-day key expires at %v (created %v)", k.Expires, k.Created)
			}
			if k.Name == "month" && (k.CreatedBy == nil || k.CreatedBy.KeyID != adminRec.ID) {
				t.Errorf("created by %+v, want the signed-in key", k.CreatedBy)
			}
		}
	}

	oldSecret := newKey
	run("roll ci admin",
		chromedp.Click(`button[aria-label="Roll API key ci admin"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#roll-dialog", chromedp.ByQuery),
		chromedp.SetValue("#roll-grace", "0", chromedp.ByQuery),
		chromedp.Click("#roll-ok", chromedp.ByQuery),
		chromedp.WaitNotVisible("#roll-dialog", chromedp.ByQuery),
		chromedp.WaitVisible("#newkey", chromedp.ByQuery),
		chromedp.Value("#newkey-value", &newKey, chromedp.ByQuery),
		chromedp.Click("#newkey-done", chromedp.ByQuery),
	)
	if !regexp.MustCompile(`^ei_[0-9a-f]{64}$`).MatchString(newKey) || newKey == oldSecret {
		t.Fatalf("rolled key shown as %q", newKey)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		return do(t, "GET", g.studio+"/v1/api/1/raw-data", oldSecret, nil).status == 401
	}, "the secret rolled with no grace still works")
	if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", newKey, nil); r.status != 200 {
		t.Errorf("the rolled key does not work: %d", r.status)
	}

	run("make ci admin the development key",
		chromedp.Click(`button[aria-label="Make API key ci admin the development key"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#devkey-dialog", chromedp.ByQuery),
		chromedp.SendKeys("#devkey-secret", oldSecret, chromedp.ByQuery),
		chromedp.Click("#devkey-ok", chromedp.ByQuery),
		chromedp.WaitVisible("#devkey-error", chromedp.ByQuery),
	)
	if msg := text("#devkey-error"); !strings.Contains(msg, "not this key") {
		t.Errorf("wrong secret: %q", msg)
	}
	run("with the right secret",
		chromedp.Evaluate(`document.getElementById('devkey-secret').value = ''`, nil),
		chromedp.SendKeys("#devkey-secret", newKey, chromedp.ByQuery),
		chromedp.Click("#devkey-ok", chromedp.ByQuery),
		chromedp.WaitNotVisible("#devkey-dialog", chromedp.ByQuery),
	)
	if got := devRows(); len(got) != 1 || got[0] != "ci admin|Admin (full access)" {
		t.Errorf("development keys after making ci admin one: %v", got)
	}
	run("make an HMAC key the development key",
		chromedp.Click(`button[aria-label="Make HMAC key dev b the development key"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#devkey-dialog", chromedp.ByQuery),
		chromedp.Click("#devkey-ok", chromedp.ByQuery),
		chromedp.WaitNotVisible("#devkey-dialog", chromedp.ByQuery),
	)
	if _, hk, _ := keys.DevelopmentKeys(context.Background(), store, 1); hk == nil || hk.Name != "dev b" {
		t.Errorf("development HMAC key = %+v", hk)
	}
	run("roll an HMAC key with a grace",
		chromedp.Click(`button[aria-label="Roll HMAC key fleet"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#roll-dialog", chromedp.ByQuery),
		chromedp.Click("#roll-ok", chromedp.ByQuery),
		chromedp.WaitNotVisible("#roll-dialog", chromedp.ByQuery),
	)
	if table := text("#hmackeys-table"); !strings.Contains(table, "old secret verifies until") {
		t.Errorf("HMAC table after a roll with a grace: %q", table)
	}

	// Last used, with the address, once the batch is written (every 50 ms here).
	if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", newKey, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		var lu string
		run("reload for last used", chromedp.Reload(), chromedp.WaitVisible("#app", chromedp.ByQuery))
		eval(`Array.from(document.querySelectorAll('#apikeys-table tbody tr')).find(r => r.cells[0].firstChild.textContent === 'ci admin').cells[5].textContent`, &lu)
		return strings.Contains(lu, "from 127.0.0.1")
	}, "last used with its address is not shown")

	if r := do(t, "GET", g.studio+"/v1/api/1/apikeys", roKey, nil); r.status != 403 {
		t.Fatalf("read-only key on the key list: %d", r.status)
	}
	run("audit tab",
		chromedp.Click("#tab-audit", chromedp.ByQuery),
		chromedp.WaitVisible("#audit-table tbody tr", chromedp.ByQuery),
		chromedp.WaitNotVisible("#panel-keys", chromedp.ByQuery),
	)
	trail := text("#audit-table")
	for _, want := range []string{"Created", "Rolled", "Made development key", "Refused", "127.0.0.1", "ci admin"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit tab lacks %q", want)
		}
	}
	var auditShot []byte
	run("audit screenshot", chromedp.FullScreenshot(&auditShot, 100))
	os.WriteFile(filepath.Join(artifactDir(t), "keys-page-audit.png"), auditShot, 0o644)
	run("back to keys", chromedp.Click("#tab-keys", chromedp.ByQuery), chromedp.WaitVisible("#panel-keys", chromedp.ByQuery))

	// Revoke the admin key created above; the gateway refuses it at once.
	run("revoke",
		chromedp.Click(`button[aria-label="Revoke API key ci admin"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-dialog", chromedp.ByQuery),
	)
	if msg := text("#confirm-text"); !strings.Contains(msg, `"ci admin"`) {
		t.Errorf("confirmation does not name the key: %q", msg)
	}
	run("confirm revoke", chromedp.Click("#confirm-ok", chromedp.ByQuery), chromedp.WaitNotVisible("#confirm-dialog", chromedp.ByQuery))
	if table := text("#apikeys-table"); strings.Contains(table, "ci admin") {
		t.Error("revoked key still listed")
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		return do(t, "GET", g.studio+"/v1/api/1/raw-data", newKey, nil).status == 401
	}, "the gateway still accepts the key revoked on the page")

	// At phone width the page still works: the tables become stacked rows.
	var phone []byte
	run("phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(g.studio+"/keys"),
		chromedp.WaitVisible("#app", chromedp.ByQuery), chromedp.FullScreenshot(&phone, 100))
	os.WriteFile(filepath.Join(artifactDir(t), "keys-page-phone.png"), phone, 0o644)
	var overflow bool
	eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Error("the page scrolls sideways at phone width")
	}

	// An API error appears next to the action that caused it (an empty name is refused by the page;
	// a name the API refuses would show the API's text the same way).
	run("form error",
		chromedp.Click("#apikey-add", chromedp.ByQuery),
		chromedp.WaitVisible("#apikey-dialog", chromedp.ByQuery),
		chromedp.Click("#apikey-create", chromedp.ByQuery),
		chromedp.WaitVisible("#apikey-form-error", chromedp.ByQuery),
	)
	if msg := text("#apikey-form-error"); !strings.Contains(msg, "Name is required") {
		t.Errorf("form error: %q", msg)
	}

	// Revoking the key you are signed in with: a warning first, then a clean sign-out.
	run("revoke own key",
		chromedp.Click("#apikey-dialog [data-close]", chromedp.ByQuery),
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Click(`button[aria-label="Revoke API key admin"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm-dialog", chromedp.ByQuery),
	)
	if msg := text("#confirm-text"); !strings.Contains(msg, "the key you are signed in with") || !strings.Contains(msg, "signs you out") {
		t.Errorf("no warning before revoking the signed-in key: %q", msg)
	}
	run("confirm own revoke",
		chromedp.Click("#confirm-ok", chromedp.ByQuery),
		chromedp.WaitNotVisible("#confirm-dialog", chromedp.ByQuery),
		chromedp.WaitVisible("#signin-form", chromedp.ByQuery),
		chromedp.WaitNotVisible("#app", chromedp.ByQuery),
	)
	if msg := text("#signin-notice"); !strings.Contains(msg, "You revoked the key you were signed in with") {
		t.Errorf("sign-out notice: %q", msg)
	}
	var errHidden bool
	eval(`document.getElementById('signin-error').hidden && !sessionStorage.getItem('keygate.key')`, &errHidden)
	if !errHidden {
		t.Error("after revoking the signed-in key: an error is shown or the key is still in sessionStorage")
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		return do(t, "GET", g.studio+"/v1/api/1/raw-data", adminKey, nil).status == 401
	}, "the gateway still accepts the revoked signed-in key")
}
