// Command vkhost-vkshell-plugin is a vkhost plugin built from an ordinary
// virtual-kubelet provider (ShellProvider, which runs each container's
// command as a local process) wrapped by vkadapter: the migration path from
// virtual-kubelet to vkhost in one file. See README.md.
package main

import (
	"flag"
	"os"

	sdk "github.com/vkhost/vkhost/sdk/go"
	"github.com/vkhost/vkhost/sdk/go/vkadapter"
)

const version = "0.1.0"

func main() {
	serve := sdk.RegisterFlags(flag.CommandLine)
	workDir := flag.String("work-dir", os.TempDir(), "directory for the pods' working directories")
	flag.Parse()

	provider := NewShellProvider(*workDir)
	adapter := vkadapter.New(provider, vkadapter.Options{Name: "vkshell", Version: version,
		Manifest: map[string]string{"backend": "local processes", "work-dir": *workDir}, LogsPrevious: true})
	code := serve.Run(adapter)
	adapter.Close()
	provider.Close()
	os.Exit(code)
}
