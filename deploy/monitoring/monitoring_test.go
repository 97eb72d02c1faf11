// Package monitoring holds keygate's Grafana dashboard and Prometheus alerting rules; its test
// checks that both parse and use only metrics keygate exports.
package monitoring

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var metricRE = regexp.MustCompile(`keygate_[a-z0-9_]+`)

// exported lists the metric names keygate's code registers (a "keygate_..." string literal in a
// non-test Go file of the module).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(keygate_[a-z0-9_]+)"`)
	err := filepath.WalkDir(filepath.Join("..", ".."), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && d.Name() != "." && d.Name() != ".." || d.Name() == "deploy") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["keygate_requests_total"] || !names["keygate_store_up"] {
		t.Fatalf("metric scan found too little: %v", names)
	}
	return names
}

// checkMetrics fails for a metric in expr that keygate does not export.
func checkMetrics(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, m := range unknownMetrics(expr, names) {
		t.Errorf("%s uses %s, which keygate does not export", where, m)
	}
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
}

// unknownMetrics lists the metrics in expr not in names (a histogram's _bucket, _sum and _count
// series are matched by its base name; counters, named _total, have none).
func unknownMetrics(expr string, names map[string]bool) []string {
	var out []string
	for _, m := range metricRE.FindAllString(expr, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b := strings.TrimSuffix(m, suf); b != m && names[b] && !strings.HasSuffix(b, "_total") {
				base = strings.TrimSuffix(m, suf)
			}
		}
		if !names[base] {
			out = append(out, m)
		}
	}
	return out
}

func TestAlertRules(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("keygate-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("keygate-alerts.yaml: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q lacks alert, expr, severity or summary", r.Alert)
			}
			seen[r.Alert] = true
			checkMetrics(t, "alert "+r.Alert, r.Expr, names)
		}
	}
	for _, want := range []string{"KeygateStoreDown", "KeygateUpstream5xxRate", "KeygateRateLimiterFallback", "KeygateSignatureFailures", "KeygateCertificateExpiresSoon"} {
		if !seen[want] {
			t.Errorf("no %s alert", want)
		}
	}
}

func TestDashboard(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("keygate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("keygate-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatal("dashboard without title, uid or panels")
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkMetrics(t, "panel "+p.Title, q.Expr, names)
			for _, m := range metricRE.FindAllString(q.Expr, -1) {
				used[m] = true
			}
		}
	}
	for _, want := range []string{"keygate_requests_total", "keygate_store_up", "keygate_build_info", "keygate_tls_certificate_expiry_timestamp_seconds"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// TestUnknownMetricsCaught: the check itself catches a misspelt metric and a suffix on a
// non-histogram, and accepts a histogram's series.
func TestUnknownMetricsCaught(t *testing.T) {
	names := map[string]bool{"keygate_requests_total": true, "keygate_request_duration_seconds": true}
	for expr, want := range map[string]string{
		"rate(keygate_requests_totl[5m])":                     "keygate_requests_totl",
		"rate(keygate_requests_total_count[5m])":              "keygate_requests_total_count",
		"rate(keygate_request_duration_seconds_bucket[5m])":   "",
		"sum(rate(keygate_requests_total{code=\"5xx\"}[5m]))": "",
	} {
		got := strings.Join(unknownMetrics(expr, names), ",")
		if got != want {
			t.Errorf("%s: unknown %q, want %q", expr, got, want)
		}
	}
}
