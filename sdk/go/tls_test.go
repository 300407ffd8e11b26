package sdk

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// testPKI is a CA with one server and one client certificate, as PEM files
// in a temp dir.
type testPKI struct {
	dir                string
	caPool             *x509.CertPool
	client             tls.Certificate
	serverCert, server string // file paths: certificate, key
	caFile             string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	pki := &testPKI{dir: t.TempDir(), caPool: x509.NewCertPool()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pki.caPool.AddCert(ca)
	pki.caFile = pki.write(t, "ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		template := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	serverDER, serverKey := issue(2, x509.ExtKeyUsageServerAuth)
	pki.serverCert = pki.write(t, "server.pem", "CERTIFICATE", serverDER)
	keyDER, _ := x509.MarshalECPrivateKey(serverKey)
	pki.server = pki.write(t, "server-key.pem", "EC PRIVATE KEY", keyDER)
	clientDER, clientKey := issue(3, x509.ExtKeyUsageClientAuth)
	pki.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return pki
}

func (p *testPKI) write(t *testing.T, name, kind string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConnectModeTCPWithMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, newTestProvider(), ServeOptions{Listen: "tcp://127.0.0.1:0",
			TLSCertFile: pki.serverCert, TLSKeyFile: pki.server, TLSClientCAFile: pki.caFile,
			ignoreSignals: true, onListening: func(a net.Addr) { addr <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var target string
	select {
	case a := <-addr:
		target = a.String()
	case err := <-done:
		t.Fatalf("Serve failed: %v", err)
	}

	call := func(certs []tls.Certificate) error {
		creds := credentials.NewTLS(&tls.Config{RootCAs: pki.caPool, Certificates: certs})
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		callCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_, err = v1.NewIdentityClient(conn).GetPluginInfo(callCtx, &v1.GetPluginInfoRequest{})
		return err
	}
	if err := call([]tls.Certificate{pki.client}); err != nil {
		t.Errorf("with a client certificate: %v, want success", err)
	}
	if err := call(nil); err == nil {
		t.Errorf("without a client certificate the call succeeded; want it refused")
	}
}

func TestTLSOptionsNeedCertAndKey(t *testing.T) {
	for _, opts := range []ServeOptions{
		{Listen: "tcp://127.0.0.1:0", TLSCertFile: "/x.pem"},
		{Listen: "tcp://127.0.0.1:0", TLSClientCAFile: "/ca.pem"},
	} {
		opts.ignoreSignals = true
		if err := Serve(context.Background(), newTestProvider(), opts); err == nil {
			t.Errorf("Serve(%+v) = nil, want a refusal", opts)
		}
	}
}
