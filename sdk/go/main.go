package sdk

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
)

// Flags are the SDK's standard command-line flags, the same names as the C++
// SDK's: --listen, --tls-cert-file, --tls-key-file, --tls-client-ca-file and
// --log-level.
type Flags struct {
	Options  ServeOptions
	LogLevel string
}

// RegisterFlags defines the standard flags on fs (flag.CommandLine in a
// plugin's main) and returns where their values land after fs.Parse. A
// plugin defines its own flags on the same set.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Options.Listen, "listen", "",
		"connect mode: serve on unix:///abs/path.sock or tcp://host:port instead of being launched by vkhost")
	fs.StringVar(&f.Options.TLSCertFile, "tls-cert-file", "", "connect mode: PEM certificate chain to serve TLS with")
	fs.StringVar(&f.Options.TLSKeyFile, "tls-key-file", "", "connect mode: PEM private key of --tls-cert-file")
	fs.StringVar(&f.Options.TLSClientCAFile, "tls-client-ca-file", "",
		"connect mode: PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "lowest level logged to stderr: debug, info, warning or error")
	return f
}

// Run serves provider with the parsed flags, logging to stderr at the chosen
// level, and returns the process exit status: 0 after a clean shutdown, 1
// otherwise (including the launch-mode refusals of spec.md §2.1, whose
// message Serve has already printed).
func (f *Flags) Run(provider Provider) int {
	var level slog.Level
	name := f.LogLevel
	if name == "warning" { // the C++ SDK's spelling
		name = "warn"
	}
	if err := level.UnmarshalText([]byte(name)); err != nil {
		fmt.Fprintf(os.Stderr, "--log-level: %v\n", err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)
	opts := f.Options
	opts.Logger = logger
	err := Serve(context.Background(), provider, opts)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNotLaunched), errors.Is(err, errNoSharedProtocol):
		return 1 // already explained on stderr
	default:
		logger.Error("plugin stopped", "error", err)
		return 1
	}
}

// ServeMain is a whole main body for plugins without flags of their own:
// it parses the standard flags from the command line and serves. Use it as
//
//	func main() { os.Exit(sdk.ServeMain(&myProvider{})) }
func ServeMain(provider Provider) int {
	f := RegisterFlags(flag.CommandLine)
	flag.Parse()
	return f.Run(provider)
}
