package tarpit

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// nginxStreamModule is where Debian's libnginx-mod-stream puts nginx's
// stream module, which sends PROXY headers (proxy_protocol on).
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// nginxProxyConf: two stream proxies in front of the tarpit, both sending
// PROXY v1 headers; one connects from the trusted address, one from an
// address that is not trusted.
const nginxProxyConf = `
load_module %[1]s;
daemon off;
worker_processes 1;
%[2]s
pid %[3]s/nginx.pid;
error_log %[3]s/error.log info;
events { worker_connections 64; }
stream {
	server { listen %[4]s; proxy_pass %[6]s; proxy_protocol on; proxy_bind 127.0.0.40; }
	server { listen %[5]s; proxy_pass %[6]s; proxy_protocol on; proxy_bind 127.0.0.41; }
}
`

// TestSSHProxyProtocolBehindNginx puts the real nginx (stream module,
// proxy_protocol on) in front of the SSH tarpit: through the trusted nginx
// the scanner's own address is trapped and logged; through the other one,
// nginx's address is, and its header is counted as untrusted.
func TestSSHProxyProtocolBehindNginx(t *testing.T) {
	nginx := e2eutil.RequireBinary(t, "nginx")
	if _, err := os.Stat(nginxStreamModule); err != nil {
		if e2eutil.InCI() {
			t.Fatalf("CI is set: nginx's stream module is missing (Debian package libnginx-mod-stream): %v", err)
		}
		t.Skipf("nginx's stream module is missing (apt-get install libnginx-mod-stream): %v", err)
	}
	t.Parallel()
	cfg := testConfig(t)
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.40"}
	tp, stop := startTarpit(t, cfg)

	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	trusted, untrusted := e2eutil.FreeAddr(t, "127.0.0.1"), e2eutil.FreeAddr(t, "127.0.0.1")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxProxyConf, nginxStreamModule, user, dir, trusted, untrusted, tp.SSHAddrs()[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	e2eutil.StartProcess(t, nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))

	// dialNginx connects through nginx from src, once nginx listens, and
	// reads one tarpit line through it.
	dialNginx := func(src, addr string) {
		t.Helper()
		var c net.Conn
		waitFor(t, "nginx to listen on "+addr, func() bool {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
			var err error
			c, err = d.Dial("tcp", addr)
			return err == nil
		})
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatalf("no tarpit line through nginx at %s: %v", addr, err)
		}
	}
	dialNginx("127.0.0.42", trusted)
	dialNginx("127.0.0.43", untrusted)
	waitFor(t, "the untrusted header to be counted", func() bool { return tp.Snapshot().UntrustedProxyHeaders == 1 })
	snap := tp.Snapshot()
	if snap.Protocols[ProtoSSH].Active != 2 || snap.Rejected[RejectProxyHeader] != 0 {
		t.Fatalf("snapshot %+v", snap)
	}
	stop()
	opened := map[string]bool{}
	for _, r := range readLog(t, cfg.LogFile) {
		if r.Event == "open" {
			opened[r.RemoteAddr] = true
		}
	}
	if len(opened) != 2 || !opened["127.0.0.42"] || !opened["127.0.0.41"] {
		t.Fatalf("opened for %v; want the scanner behind the trusted nginx (127.0.0.42) and the untrusted nginx itself (127.0.0.41)", opened)
	}
}
