package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var kustomizations = []string{"base", "redis", "overlays/ingestion-public"}

// render builds a kustomization with the kustomize Go API and returns its documents.
func render(t *testing.T, dir string) [][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("..", "deploy", dir))
	if err != nil {
		t.Fatalf("kustomize build deploy/%s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// decodeStrict decodes a YAML document into a typed object, refusing unknown fields (a misspelt
// field in a manifest would otherwise be silently ignored by the cluster).
func decodeStrict(t *testing.T, doc []byte, into any) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%T: %v\n%s", into, err, doc)
	}
}

// configEnvNames lists every environment variable Config reads.
func configEnvNames() map[string]bool {
	names := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			if tag := f.Tag.Get("env"); tag != "" {
				names[strings.Split(tag, ",")[0]] = true
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	return names
}

var imageTag = regexp.MustCompile(`^[^:@]+(:[A-Za-z0-9_.-]+)?(@sha256:[0-9a-f]{64})?$`)

func checkImage(t *testing.T, where, image string) {
	t.Helper()
	if !imageTag.MatchString(image) || (!strings.Contains(image, ":") && !strings.Contains(image, "@")) {
		t.Errorf("%s: image %q has no tag or digest", where, image)
	}
	if strings.HasSuffix(image, ":latest") {
		t.Errorf("%s: image %q uses :latest", where, image)
	}
}

func isNonRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	nonRoot := pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
	if c != nil && c.RunAsNonRoot != nil {
		nonRoot = *c.RunAsNonRoot
	}
	uid := int64(-1)
	if pod != nil && pod.RunAsUser != nil {
		uid = *pod.RunAsUser
	}
	if c != nil && c.RunAsUser != nil {
		uid = *c.RunAsUser
	}
	return nonRoot && uid != 0
}

func TestDeployManifests(t *testing.T) {
	envNames := configEnvNames()
	probePaths := map[string]bool{}
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			docs := render(t, dir)
			configMaps := map[string]map[string]string{}
			var pods []struct {
				name string
				spec corev1.PodSpec
			}
			kinds := map[string]int{}
			for _, doc := range docs {
				var meta struct{ APIVersion, Kind string }
				if err := yaml.Unmarshal(doc, &meta); err != nil {
					t.Fatal(err)
				}
				kinds[meta.Kind]++
				switch meta.APIVersion + "/" + meta.Kind {
				case "apps/v1/Deployment":
					var d appsv1.Deployment
					decodeStrict(t, doc, &d)
					pods = append(pods, struct {
						name string
						spec corev1.PodSpec
					}{d.Name, d.Spec.Template.Spec})
				case "apps/v1/StatefulSet":
					var s appsv1.StatefulSet
					decodeStrict(t, doc, &s)
					pods = append(pods, struct {
						name string
						spec corev1.PodSpec
					}{s.Name, s.Spec.Template.Spec})
				case "v1/Service":
					decodeStrict(t, doc, &corev1.Service{})
				case "v1/ConfigMap":
					var cm corev1.ConfigMap
					decodeStrict(t, doc, &cm)
					configMaps[cm.Name] = cm.Data
				case "cert-manager.io/v1/Certificate":
					decodeStrict(t, doc, &certificate{})
				case "policy/v1/PodDisruptionBudget":
					decodeStrict(t, doc, &policyv1.PodDisruptionBudget{})
				case "autoscaling/v2/HorizontalPodAutoscaler":
					var h autoscalingv2.HorizontalPodAutoscaler
					decodeStrict(t, doc, &h)
					if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
						t.Error("the HPA must keep several replicas")
					}
				default:
					t.Errorf("unexpected kind %s/%s", meta.APIVersion, meta.Kind)
				}
			}
			if len(pods) == 0 {
				t.Fatal("no workloads rendered")
			}
			for _, p := range pods {
				keygates := 0
				for _, c := range p.spec.Containers {
					where := p.name + "/" + c.Name
					checkImage(t, where, c.Image)
					if !isNonRoot(p.spec.SecurityContext, c.SecurityContext) {
						t.Errorf("%s: does not run as non-root", where)
					}
					sc := c.SecurityContext
					if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
						sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
						sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 || sc.Capabilities.Drop[0] != "ALL" {
						t.Errorf("%s: securityContext must forbid privilege escalation, drop ALL capabilities and keep the root filesystem read-only", where)
					}
					if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
						t.Errorf("%s: memory request and limit must be set", where)
					}
					if !strings.Contains(c.Image, "keygate") {
						continue
					}
					keygates++
					// Every variable the manifests set exists in keygate's configuration.
					for _, e := range c.Env {
						switch e.Name {
						case "GOMEMLIMIT":
							// Go's soft memory limit must sit below the container's hard one.
							lim, ok := goMemLimit(e.Value)
							if !ok || lim >= c.Resources.Limits.Memory().Value() {
								t.Errorf("%s: GOMEMLIMIT %q must be a size below the memory limit %s", where, e.Value, c.Resources.Limits.Memory())
							}
						case "GOGC", "GOMAXPROCS":
						default:
							if !envNames[e.Name] {
								t.Errorf("%s: env %s is not a keygate setting", where, e.Name)
							}
						}
					}
					for _, ef := range c.EnvFrom {
						if ef.ConfigMapRef == nil {
							continue
						}
						data, ok := configMaps[ef.ConfigMapRef.Name]
						if !ok {
							t.Errorf("%s: ConfigMap %s is not in the kustomization", where, ef.ConfigMapRef.Name)
						}
						for k, v := range data {
							if !envNames[k] {
								t.Errorf("%s: ConfigMap key %s is not a keygate setting", where, k)
							}
							if k == "KEYGATE_OPS_LISTEN" && v != ":9090" {
								t.Errorf("ops listener %q but probes use 9090", v)
							}
						}
					}
					// Probes point at the ops port's paths.
					opsPort := int32(0)
					for _, port := range c.Ports {
						if port.Name == "ops" {
							opsPort = port.ContainerPort
						}
					}
					if opsPort != 9090 {
						t.Errorf("%s: no ops port 9090", where)
					}
					for name, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
						if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Port.String() != "ops" {
							t.Errorf("%s: %s probe must be an HTTP GET on the ops port", where, name)
							continue
						}
						probePaths[pr.HTTPGet.Path] = true
					}
					if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
						t.Errorf("%s: liveness must be /healthz (it must not fail when Redis does)", where)
					}
					if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
						t.Errorf("%s: readiness must be /readyz", where)
					}
					if p.spec.TerminationGracePeriodSeconds == nil || *p.spec.TerminationGracePeriodSeconds < 30 {
						t.Errorf("%s: terminationGracePeriodSeconds must exceed the 25 s drain", where)
					}
				}
				if strings.Contains(dir, "base") && keygates != 1 {
					t.Errorf("%s: %d keygate containers, want 1 sidecar", p.name, keygates)
				}
			}
			if dir == "overlays/ingestion-public" && kinds["HorizontalPodAutoscaler"] != 1 {
				t.Error("the public ingestion overlay must have an HPA")
			}
			if dir == "base" && kinds["PodDisruptionBudget"] != 1 {
				t.Error("the base must have a PodDisruptionBudget")
			}
		})
	}
	// The probe paths are ones keygate actually serves on its ops listener.
	g := startGateway(t, StoreConfig{DataDir: t.TempDir()}, "http://127.0.0.1:1", nil)
	for p := range probePaths {
		res, err := http.Get(g.ops + p)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("probe path %s on the ops listener: %v %v", p, res.StatusCode, err)
		}
		if res != nil {
			res.Body.Close()
		}
	}
}

// TestDockerfile checks the image runs keygate serve as a non-root user, from pinned bases.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var froms []string
	var user, entrypoint, cmd string
	exposed := map[string]bool{}
	args := map[string]string{}
	sc := bufio.NewScanner(f)
	stage := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(fields[1], "="); ok {
				args[k] = v
			}
		case "FROM":
			froms = append(froms, fields[1])
			stage++
			user = "" // USER applies per stage; only the last stage's counts
		case "USER":
			user = fields[1]
		case "ENTRYPOINT":
			entrypoint = strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
		case "CMD":
			cmd = strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
		case "EXPOSE":
			for _, p := range fields[1:] {
				exposed[p] = true
			}
		}
	}
	if stage < 2 {
		t.Errorf("want a multi-stage build, got %d stage(s)", stage)
	}
	for _, from := range froms {
		img := from
		for k, v := range args {
			img = strings.ReplaceAll(img, "${"+k+"}", v)
		}
		checkImage(t, "FROM", img)
	}
	if !strings.Contains(froms[len(froms)-1], "distroless") && !strings.EqualFold(froms[len(froms)-1], "scratch") {
		t.Errorf("final stage %s is not distroless or scratch", froms[len(froms)-1])
	}
	uid := strings.Split(user, ":")[0]
	if user == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage USER %q: must be non-root", user)
	}
	if entrypoint != `["/keygate"]` || cmd != `["serve"]` {
		t.Errorf("ENTRYPOINT %s CMD %s, want [\"/keygate\"] [\"serve\"]", entrypoint, cmd)
	}
	for _, p := range []string{"4800", "4810", "4802", "9090"} {
		if !exposed[p] {
			t.Errorf("port %s not exposed", p)
		}
	}
	b, _ := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if !strings.Contains(string(b), "-X main.version=${VERSION}") {
		t.Error("the build does not stamp the version (keygate version)")
	}
}

// TestDeployServiceTokenComponent: both layouts carry the optional service-token component,
// commented out (off unless the operator creates the Secret and turns it on); turned on, it gives
// the keygate container KEYGATE_SERVICE_TOKEN_FILE pointing into a read-only mount of the Secret.
func TestDeployServiceTokenComponent(t *testing.T) {
	// Copy deploy/ into memory so the comment can be lifted without touching the files.
	mem := filesys.MakeFsInMemory()
	root := filepath.Join("..", "deploy")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		return mem.WriteFile(filepath.Join("/deploy", rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"base", "overlays/ingestion-public"} {
		t.Run(dir, func(t *testing.T) {
			kpath := filepath.Join("/deploy", dir, "kustomization.yaml")
			b, err := mem.ReadFile(kpath)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if !strings.Contains(text, "# components:\n#   - ") || !strings.Contains(text, "components/service-token") || !strings.Contains(strings.ToLower(text), "optional") {
				t.Fatalf("%s lacks the commented, optional service-token component:\n%s", dir, text)
			}
			on := strings.Replace(strings.Replace(text, "# components:\n", "components:\n", 1), "#   - ", "  - ", 1)
			for name, content := range map[string]string{"off": text, "on": on} {
				if err := mem.WriteFile(kpath, []byte(content)); err != nil {
					t.Fatal(err)
				}
				m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/deploy", dir))
				if err != nil {
					t.Fatalf("%s: kustomize build: %v", name, err)
				}
				found := false
				for _, res := range m.Resources() {
					if res.GetKind() != "Deployment" {
						continue
					}
					y, err := res.AsYAML()
					if err != nil {
						t.Fatal(err)
					}
					var d appsv1.Deployment
					decodeStrict(t, y, &d)
					for _, c := range d.Spec.Template.Spec.Containers {
						if c.Name != "keygate" {
							continue
						}
						file := ""
						for _, e := range c.Env {
							if e.Name == "KEYGATE_SERVICE_TOKEN_FILE" {
								file = e.Value
							}
						}
						if name == "off" {
							if file != "" {
								t.Error("the hand-out is on without the operator turning it on")
							}
							continue
						}
						found = true
						checkTokenMount(t, d.Spec.Template.Spec, c, file)
					}
				}
				if name == "on" && !found {
					t.Error("no keygate container got the service token")
				}
			}
		})
	}
}

func checkTokenMount(t *testing.T, pod corev1.PodSpec, c corev1.Container, file string) {
	t.Helper()
	if !strings.HasPrefix(file, "/") {
		t.Fatalf("KEYGATE_SERVICE_TOKEN_FILE = %q", file)
	}
	dir, base := filepath.Split(file)
	for _, vm := range c.VolumeMounts {
		if filepath.Clean(vm.MountPath) != filepath.Clean(dir) {
			continue
		}
		if !vm.ReadOnly || vm.SubPath != "" {
			t.Errorf("the token mount must be read-only and not a subPath (subPath mounts never see a rotation): %+v", vm)
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name {
				continue
			}
			if v.Secret == nil || v.Secret.SecretName != "keygate-service-token" {
				t.Fatalf("volume %s is not the Secret keygate-service-token", v.Name)
			}
			for _, it := range v.Secret.Items {
				if it.Key == "token" && it.Path == base {
					return
				}
			}
			t.Fatalf("the Secret's key token is not mounted as %s: %+v", base, v.Secret.Items)
		}
	}
	t.Fatalf("no volume mounted at %s", dir)
}

// certificate is the part of cert-manager's Certificate the manifests use (decoded strictly).
type certificate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		SecretName  string   `json:"secretName"`
		DNSNames    []string `json:"dnsNames"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct {
			Group string `json:"group"`
			Kind  string `json:"kind"`
			Name  string `json:"name"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// TestDeployIngestionTLS: the public ingestion overlay serves TLS from a cert-manager Certificate:
// its Secret is mounted as a whole directory (a subPath mount would never see a renewal), and the
// TLS variables point into it.
func TestDeployIngestionTLS(t *testing.T) {
	var cert *certificate
	var dep *appsv1.Deployment
	config := map[string]string{}
	for _, doc := range render(t, "overlays/ingestion-public") {
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Certificate":
			cert = &certificate{}
			decodeStrict(t, doc, cert)
		case "Deployment":
			dep = &appsv1.Deployment{}
			decodeStrict(t, doc, dep)
		case "ConfigMap":
			var cm corev1.ConfigMap
			decodeStrict(t, doc, &cm)
			for k, v := range cm.Data {
				config[k] = v
			}
		}
	}
	if cert == nil || dep == nil {
		t.Fatal("no Certificate or Deployment rendered")
	}
	if cert.Spec.SecretName == "" || cert.Spec.IssuerRef.Name == "" || len(cert.Spec.DNSNames) == 0 {
		t.Fatalf("Certificate incomplete: %+v", cert.Spec)
	}
	vol := ""
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == cert.Spec.SecretName {
			vol = v.Name
		}
	}
	if vol == "" {
		t.Fatalf("the Certificate's Secret %s is not a volume", cert.Spec.SecretName)
	}
	mount := ""
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == vol {
				if m.SubPath != "" {
					t.Errorf("the TLS Secret is mounted with subPath %q: renewals would never be seen", m.SubPath)
				}
				if !m.ReadOnly {
					t.Error("the TLS Secret is not mounted read-only")
				}
				mount = m.MountPath
			}
		}
	}
	if mount == "" {
		t.Fatal("the TLS Secret volume is not mounted in the keygate container")
	}
	for name, file := range map[string]string{"KEYGATE_TLS_CERT_FILE": "tls.crt", "KEYGATE_TLS_KEY_FILE": "tls.key"} {
		if want := mount + "/" + file; config[name] != want {
			t.Errorf("%s = %q, want %q (the Secret's key in the mount)", name, config[name], want)
		}
	}
	if faces := config["KEYGATE_TLS_FACES"]; !strings.Contains(faces, "ingestion") || strings.Contains(faces, "ops") {
		t.Errorf("KEYGATE_TLS_FACES = %q: want the ingestion face on TLS and ops plain (probes)", faces)
	}
}

// goMemLimit parses a GOMEMLIMIT value as the Go runtime does (a byte count with an optional B,
// KiB, MiB, GiB or TiB suffix).
func goMemLimit(v string) (int64, bool) {
	mult := int64(1)
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(v, u.s) {
			v, mult = strings.TrimSuffix(v, u.s), u.m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n * mult, err == nil && n > 0
}
