package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// ServeOptions says how to serve. The zero value is launch mode with the
// defaults below.
type ServeOptions struct {
	// Listen empty means launch mode (started by vkhost, spec.md §2.1);
	// otherwise connect mode on "unix:///path" or "tcp://host:port".
	Listen string
	// Connect mode over TCP: serve TLS with this certificate and key, and
	// require client certificates signed by TLSClientCAFile when set.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	// MaxReceiveMessageBytes is the largest message accepted from the host;
	// 0 means 64 MiB (spec.md §9).
	MaxReceiveMessageBytes int
	// ShutdownGrace is how long open RPCs get to finish on shutdown before
	// they are cut; 0 means 2 s.
	ShutdownGrace time.Duration
	// Protocols are the protocol majors this plugin speaks; nil means {1}.
	Protocols []int
	// Logger receives the SDK's own log lines; nil means slog.Default().
	Logger *slog.Logger

	// Test seams: the process's environment, stdin and stdout in launch mode,
	// and whether SIGTERM/SIGINT stop the server.
	getenv        func(string) string
	stdin         io.Reader
	stdout        io.Writer
	ignoreSignals bool
	onListening   func(addr net.Addr)
}

func (o *ServeOptions) withDefaults() ServeOptions {
	out := *o
	if out.MaxReceiveMessageBytes == 0 {
		out.MaxReceiveMessageBytes = 64 << 20
	}
	if out.ShutdownGrace == 0 {
		out.ShutdownGrace = 2 * time.Second
	}
	if out.Protocols == nil {
		out.Protocols = []int{1}
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.getenv == nil {
		out.getenv = os.Getenv
	}
	if out.stdin == nil {
		out.stdin = os.Stdin
	}
	if out.stdout == nil {
		out.stdout = os.Stdout
	}
	return out
}

// endpoint is where and how to listen, decided before the server starts.
type endpoint struct {
	launchMode bool
	protocol   int
	socketDir  string // launch mode: our private directory, removed on exit
	socketPath string // unix sockets: the file removed on exit
	listener   net.Listener
	creds      credentials.TransportCredentials // nil: plaintext
}

func (e *endpoint) cleanup() {
	if e.listener != nil {
		e.listener.Close()
	}
	if e.socketPath != "" {
		os.Remove(e.socketPath)
	}
	if e.socketDir != "" {
		os.RemoveAll(e.socketDir)
	}
}

// Serve serves provider until ctx is done, SIGTERM or SIGINT arrives, or (in
// launch mode) stdin reaches end-of-file because vkhost went away. It then
// stops accepting RPCs, cancels the contexts of open streams, gives RPCs
// ShutdownGrace to finish, removes its socket and returns nil.
//
// It fails at once, having printed why to stderr in launch mode, when
// started outside vkhost without Listen (missing magic cookie) or when no
// protocol version is shared with the host; ServeMain exits with status 1
// then. Other errors: a bad Listen address, unreadable TLS files, a socket
// that cannot be created, or a provider that lists
// CAPABILITY_WATCH_POD_STATUS without implementing PodStatusSource.
func Serve(ctx context.Context, provider Provider, opts ServeOptions) error {
	o := opts.withDefaults()
	services, err := newServices(provider)
	if err != nil {
		return err
	}
	var ep *endpoint
	if o.Listen == "" {
		ep, err = prepareLaunch(&o)
	} else {
		ep, err = prepareConnect(&o)
	}
	if err != nil {
		return err
	}
	defer ep.cleanup()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if !o.ignoreSignals {
		var stopSignals context.CancelFunc
		ctx, stopSignals = signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
		defer stopSignals()
	}

	serverOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(o.MaxReceiveMessageBytes)}
	if ep.creds != nil {
		serverOpts = append(serverOpts, grpc.Creds(ep.creds))
	}
	server := grpc.NewServer(serverOpts...)
	services.register(server)
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)

	served := make(chan error, 1)
	go func() { served <- server.Serve(ep.listener) }()

	if ep.launchMode {
		if _, err := io.WriteString(o.stdout, handshakeLine(ep.protocol, ep.socketPath)); err != nil {
			server.Stop()
			return fmt.Errorf("cannot write the handshake line: %w", err)
		}
		o.Logger.Info("serving", "protocol", ep.protocol, "socket", ep.socketPath)
		go watchStdin(o.stdin, stop, o.Logger)
	} else {
		o.Logger.Info("serving", "address", ep.listener.Addr().String())
	}
	if o.onListening != nil {
		o.onListening(ep.listener.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		o.Logger.Info("shutting down", "reason", context.Cause(ctx))
	case serveErr = <-served:
	}
	healthServer.Shutdown()
	services.beginShutdown()
	gracefulStop(server, o.ShutdownGrace)
	if serveErr != nil && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return fmt.Errorf("serving gRPC stopped: %w", serveErr)
	}
	return nil
}

// gracefulStop lets open RPCs finish for at most grace, then cuts them.
func gracefulStop(server *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		server.Stop()
		<-done
	}
}

// watchStdin calls stop when in reaches end-of-file: vkhost keeps the write
// end of a pipe on our stdin and never writes, so EOF means it went away
// (spec.md §2.1 rule 6). Data on stdin is not part of the protocol and is
// ignored. The goroutine ends with the process (a blocked read cannot be
// interrupted portably), which is harmless: it only ever calls stop.
func watchStdin(in io.Reader, stop context.CancelFunc, logger *slog.Logger) {
	buf := make([]byte, 4096)
	for {
		_, err := in.Read(buf)
		if err == io.EOF {
			logger.Info("stdin closed: vkhost went away")
			stop()
			return
		}
		if err != nil {
			logger.Warn("cannot read stdin; no longer watching it for vkhost's exit", "error", err)
			return
		}
	}
}

// prepareLaunch applies spec.md §2.1: cookie, protocol choice, a private
// 0700 directory with the socket in it.
func prepareLaunch(o *ServeOptions) (*endpoint, error) {
	if err := checkMagicCookie(o.getenv(MagicCookieEnv)); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		return nil, err
	}
	protocol, err := chooseProtocol(o.getenv(ProtocolVersionsEnv), o.Protocols)
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		return nil, err
	}
	dir, err := makePrivateSocketDir(o.getenv(SocketDirEnv), o.getenv("TMPDIR"))
	if err != nil {
		return nil, err
	}
	ep := &endpoint{launchMode: true, protocol: protocol, socketDir: dir,
		socketPath: dir + "/plugin.sock"}
	ep.listener, err = net.Listen("unix", ep.socketPath)
	if err != nil {
		ep.cleanup()
		return nil, fmt.Errorf("cannot listen on %s: %w", ep.socketPath, err)
	}
	return ep, nil
}

// prepareConnect listens where --listen says, with TLS when configured.
func prepareConnect(o *ServeOptions) (*endpoint, error) {
	address, err := parseListenAddress(o.Listen)
	if err != nil {
		return nil, err
	}
	ep := &endpoint{}
	ep.creds, err = serverCredentials(o)
	if err != nil {
		return nil, err
	}
	if address.network == "unix" {
		if err := removeStaleSocket(address.address); err != nil {
			return nil, err
		}
		ep.socketPath = address.address
	}
	ep.listener, err = net.Listen(address.network, address.address)
	if err != nil {
		return nil, fmt.Errorf("cannot serve on %s (address in use, bad address, or no permission): %w",
			o.Listen, err)
	}
	return ep, nil
}

// serverCredentials returns nil for plaintext, or TLS (mutual when a client
// CA is given) from the options' files.
func serverCredentials(o *ServeOptions) (credentials.TransportCredentials, error) {
	if o.TLSCertFile == "" && o.TLSKeyFile == "" {
		if o.TLSClientCAFile != "" {
			return nil, fmt.Errorf("--tls-client-ca-file needs --tls-cert-file and --tls-key-file: %w",
				ErrInvalidArgument)
		}
		return nil, nil
	}
	if o.TLSCertFile == "" || o.TLSKeyFile == "" {
		return nil, fmt.Errorf("TLS needs both --tls-cert-file and --tls-key-file: %w", ErrInvalidArgument)
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load the TLS certificate %s and key %s: %w",
			o.TLSCertFile, o.TLSKeyFile, err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.TLSClientCAFile != "" {
		pem, err := os.ReadFile(o.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in the client CA bundle %s: %w",
				o.TLSClientCAFile, ErrInvalidArgument)
		}
		config.ClientCAs = pool
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(config), nil
}

// capabilitySet is the provider's capability list, read once.
type capabilitySet map[v1.Capability]bool

func (c capabilitySet) has(capability v1.Capability) bool { return c[capability] }
