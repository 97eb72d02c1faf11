package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
)

// startNginx runs nginx as the reference proxy: one worker pinned like the other servers, a `map`
// on x-api-key (401 for any other key), keep-alive to the backend. Its configuration is generated
// into the bench's temp dir; nil when nginx is not installed.
func (b *bench) startNginx() (*exec.Cmd, string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, "", nil
		}
		bin = "/usr/sbin/nginx" // Debian's, outside a non-root PATH
	}
	dir := filepath.Join(b.dir, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, "", err
	}
	addr := freePort()
	host, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    map_hash_bucket_size 128;
    map $http_x_api_key $key_ok {
        default 0;
        "%[2]s" 1;
    }
    upstream backend {
        server %[3]s;
        keepalive 64;
    }
    server {
        listen %[4]s:%[5]s;
        location / {
            if ($key_ok = 0) { return 401; }
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, b.adminKey, b.backend, host, port)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	cmd, err := b.start("nginx", 0, nil, bin, "-e", filepath.Join(dir, "logs", "error.log"), "-p", dir, "-c", cf)
	if err != nil {
		return nil, "", err
	}
	if err := waitPort(addr); err != nil {
		out, _ := os.ReadFile(filepath.Join(b.dir, "nginx.log"))
		elog, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
		return nil, "", fmt.Errorf("%w: %s %s", err, out, elog)
	}
	return cmd, addr, nil
}
