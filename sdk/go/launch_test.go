package sdk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// The launch-mode tests start this test binary again as a plugin: with
// asPluginEnv set, TestMain serves a testProvider through ServeMain instead
// of running tests, exactly as a plugin's main would.
const asPluginEnv = "VKHOST_GO_SDK_TEST_AS_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(asPluginEnv) == "1" {
		os.Args = os.Args[:1]
		os.Exit(ServeMain(newTestProvider(allCaps...)))
	}
	os.Exit(m.Run())
}

// plugin is this binary started as a plugin with the given environment.
type plugin struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

func startPlugin(t *testing.T, env ...string) *plugin {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &plugin{cmd: exec.Command(self)}
	p.cmd.Env = append(os.Environ(), asPluginEnv+"=1")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

// wait returns the exit code, failing the test after 10 s.
func (p *plugin) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return exitErr.ExitCode()
		}
		if err != nil {
			t.Fatalf("waiting for the plugin: %v", err)
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatalf("the plugin did not exit within 10 s; stderr: %s", p.stderr.String())
		return -1
	}
}

func launchEnv(dir string, versions string) []string {
	return []string{MagicCookieEnv + "=" + MagicCookieValue, ProtocolVersionsEnv + "=" + versions,
		SocketDirEnv + "=" + dir}
}

// handshake reads and checks the first stdout line; returns the socket path.
func (p *plugin) handshake(t *testing.T, dir string) string {
	t.Helper()
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("no handshake line: %v; stderr: %s", err, p.stderr.String())
	}
	parts := strings.Split(strings.TrimSuffix(line, "\n"), "|")
	if len(parts) != 6 || parts[0] != "VKHOST" || parts[1] != "1" || parts[2] != "1" ||
		parts[3] != "unix" || parts[5] != "grpc" {
		t.Fatalf("handshake line %q, want VKHOST|1|1|unix|<path>|grpc", line)
	}
	socket := parts[4]
	if filepath.Dir(filepath.Dir(socket)) != dir {
		t.Errorf("socket %s is not in a new directory inside %s", socket, dir)
	}
	info, err := os.Stat(filepath.Dir(socket))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v (%v), want 0700", info.Mode().Perm(), err)
	}
	return socket
}

func TestLaunchHandshakeServesAndExitsCleanlyOnSigterm(t *testing.T) {
	dir := t.TempDir()
	p := startPlugin(t, launchEnv(dir, "99,1,98")...)
	socket := p.handshake(t, dir)

	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := v1.NewIdentityClient(conn).GetPluginInfo(ctx, &v1.GetPluginInfoRequest{})
	if err != nil || info.Name != "sdk-test" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit status %d on SIGTERM, want 0; stderr: %s", code, p.stderr.String())
	}
	if _, err := os.Stat(filepath.Dir(socket)); !os.IsNotExist(err) {
		t.Errorf("socket directory left behind (%v)", err)
	}
}

func TestLaunchExitsWhenStdinCloses(t *testing.T) {
	dir := t.TempDir()
	p := startPlugin(t, launchEnv(dir, "1")...)
	p.handshake(t, dir)
	p.stdin.Close()
	if code := p.wait(t); code != 0 {
		t.Errorf("exit status %d after stdin EOF, want 0", code)
	}
}

func TestLaunchRefusals(t *testing.T) {
	cases := []struct {
		name, mentions string
		env            []string
	}{
		{"missing cookie", "vkhost", []string{ProtocolVersionsEnv + "=1"}},
		{"wrong cookie", "vkhost", []string{MagicCookieEnv + "=nope", ProtocolVersionsEnv + "=1"}},
		{"no shared version", "99", []string{MagicCookieEnv + "=" + MagicCookieValue, ProtocolVersionsEnv + "=99"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlugin(t, tc.env...)
			rest, _ := io.ReadAll(p.stdout)
			if code := p.wait(t); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if len(rest) != 0 {
				t.Errorf("stdout %q, want nothing (no handshake line)", rest)
			}
			if !strings.Contains(p.stderr.String(), tc.mentions) {
				t.Errorf("stderr %q does not mention %q", p.stderr.String(), tc.mentions)
			}
		})
	}
}

func TestChooseProtocol(t *testing.T) {
	for _, tc := range []struct {
		offer string
		want  int
		ok    bool
	}{
		{"1", 1, true}, {"99, 1 ,98", 1, true}, {"", 0, false}, {"2", 0, false}, {"x,1", 0, false},
	} {
		got, err := chooseProtocol(tc.offer, []int{1})
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("chooseProtocol(%q) = %d, %v; want %d ok=%v", tc.offer, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseListenAddress(t *testing.T) {
	for _, tc := range []struct {
		in, network, address string
	}{
		{"unix:///run/p.sock", "unix", "/run/p.sock"},
		{"tcp://127.0.0.1:7443", "tcp", "127.0.0.1:7443"},
		{"tcp://:0", "tcp", ":0"},
		{"tcp://[::1]:80", "tcp", "[::1]:80"},
		{"unix://relative.sock", "", ""},
		{"tcp://nohost", "", ""},
		{"http://x:1", "", ""},
	} {
		got, err := parseListenAddress(tc.in)
		if tc.network == "" {
			if err == nil {
				t.Errorf("parseListenAddress(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.network != tc.network || got.address != tc.address {
			t.Errorf("parseListenAddress(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestRemoveStaleSocketRefusesRegularFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-socket")
	os.WriteFile(file, []byte("x"), 0o600)
	if err := removeStaleSocket(file); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("removeStaleSocket(regular file) = %v, want ErrFailedPrecondition", err)
	}
	if err := removeStaleSocket(file + ".absent"); err != nil {
		t.Errorf("removeStaleSocket(absent) = %v, want nil", err)
	}
}

func TestFeedCoalescesPerPodAndKeepsOrder(t *testing.T) {
	var feed PodStatusFeed
	sub := feed.Subscribe()
	defer sub.Close()
	status := func(uid, reason string) *v1.PodStatus {
		return &v1.PodStatus{Pod: &v1.PodRef{Uid: uid}, Reason: reason}
	}
	feed.Publish(status("a", "1"))
	feed.Publish(status("b", "1"))
	feed.Publish(status("a", "2"))            // replaces a's pending event in place
	feed.Publish(status("c", "last"))         // then deleted: DELETED keeps it
	feed.PublishDeleted(&v1.PodRef{Uid: "c"}) //
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var got []string
	for range 3 {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Status.Pod.Uid+":"+e.Type.String()+":"+e.Status.Reason)
	}
	want := "a:TYPE_STATUS:2 b:TYPE_STATUS:1 c:TYPE_DELETED:last"
	if strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	if e, err := sub.Next(short); err == nil {
		t.Errorf("unexpected event %v", e)
	}
}
