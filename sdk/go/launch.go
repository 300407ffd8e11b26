package sdk

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The launch-mode contract of spec.md §2.1, shared with the C++ SDK and the
// host (host/plugin).
const (
	MagicCookieEnv      = "VKHOST_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue    = "vkhost-provider-plugin-7c1e4a0f9d2b"
	ProtocolVersionsEnv = "VKHOST_PLUGIN_PROTOCOL_VERSIONS"
	SocketDirEnv        = "VKHOST_PLUGIN_SOCKET_DIR"
	// handshakeCoreVersion is the version of the handshake line format.
	handshakeCoreVersion = 1
)

// errNotLaunched and errNoSharedProtocol are the two refusals of spec.md
// §2.1 rules 1 and 2; Serve prints their message to stderr and ServeMain
// exits with status 1.
var (
	errNotLaunched      = errors.New("not started by vkhost")
	errNoSharedProtocol = errors.New("no protocol version in common with vkhost")
)

// checkMagicCookie returns nil when cookie is the magic cookie, else an
// error wrapping errNotLaunched whose text tells a person what the program is.
func checkMagicCookie(cookie string) error {
	if cookie == MagicCookieValue {
		return nil
	}
	return fmt.Errorf("This program is a vkhost provider plugin. It is meant to be started "+
		"by vkhost (which sets %s), or run as a server with --listen unix:///path/plugin.sock "+
		"or --listen tcp://host:port for vkhost to connect to: %w", MagicCookieEnv, errNotLaunched)
}

// chooseProtocol returns the highest protocol major in both hostVersions (the
// env value, a comma list) and ours, or an error naming both lists.
func chooseProtocol(hostVersions string, ours []int) (int, error) {
	best := -1
	for _, item := range strings.Split(hostVersions, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		version, err := strconv.Atoi(item)
		if err != nil {
			best = -1
			break
		}
		for _, v := range ours {
			if v == version && v > best {
				best = v
			}
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: vkhost offers %q (%s), this plugin speaks %q",
			errNoSharedProtocol, hostVersions, ProtocolVersionsEnv, joinInts(ours))
	}
	return best, nil
}

func joinInts(values []int) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

// handshakeLine is the one line a launched plugin prints when it serves.
func handshakeLine(protocol int, socketPath string) string {
	return fmt.Sprintf("VKHOST|%d|%d|unix|%s|grpc\n", handshakeCoreVersion, protocol, socketPath)
}

// makePrivateSocketDir creates a fresh 0700 directory under socketDir if set,
// else tmpDir, else /tmp, and returns its absolute path.
func makePrivateSocketDir(socketDir, tmpDir string) (string, error) {
	parent := "/tmp"
	switch {
	case socketDir != "":
		parent = socketDir
	case tmpDir != "":
		parent = tmpDir
	}
	parent, err := filepath.Abs(parent)
	if err != nil {
		return "", fmt.Errorf("cannot resolve socket directory %s: %w", parent, err)
	}
	// os.MkdirTemp creates the directory with mode 0700.
	dir, err := os.MkdirTemp(parent, "vkhost-plugin-")
	if err != nil {
		return "", fmt.Errorf("cannot create a private socket directory in %s: %w", parent, err)
	}
	return dir, nil
}

// listenAddress is a parsed --listen value: network "unix" with an absolute
// path, or "tcp" with host:port.
type listenAddress struct {
	network string
	address string
}

// parseListenAddress accepts unix:///abs/path and tcp://host:port (host may
// be a name, an IPv4 address, [IPv6] or empty for all interfaces).
func parseListenAddress(listen string) (listenAddress, error) {
	invalid := func(why string) error {
		return fmt.Errorf("bad --listen %q: %s; use unix:///absolute/path.sock or tcp://host:port: %w",
			listen, why, ErrInvalidArgument)
	}
	if path, ok := strings.CutPrefix(listen, "unix://"); ok {
		if !strings.HasPrefix(path, "/") {
			return listenAddress{}, invalid("the socket path must be absolute")
		}
		return listenAddress{network: "unix", address: path}, nil
	}
	if hostPort, ok := strings.CutPrefix(listen, "tcp://"); ok {
		host, port, err := net.SplitHostPort(hostPort)
		if err != nil {
			return listenAddress{}, invalid(err.Error())
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return listenAddress{}, invalid("the port must be a number from 0 to 65535")
		}
		return listenAddress{network: "tcp", address: net.JoinHostPort(host, port)}, nil
	}
	return listenAddress{}, invalid("unknown scheme")
}

// removeStaleSocket removes a socket file left at path by an earlier run,
// and refuses to replace anything that is not a socket.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot inspect %s: %w", path, err)
	}
	if info.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it: %w",
			path, ErrFailedPrecondition)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("cannot remove stale socket %s: %w", path, err)
	}
	return nil
}
