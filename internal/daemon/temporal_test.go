package daemon

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

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// issue makes a certificate for name signed by ca (self-signed when ca is nil).
func issue(t *testing.T, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, server bool) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		ca, caKey = tmpl, key
	} else if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestTemporalOverTLSWithKeys: serve and worker reach a cluster over TLS checked against a CA
// of its own, present a client certificate (mTLS) and send an API key (Temporal Cloud), as
// their flags say. A stand-in frontend records what arrives.
func TestTemporalOverTLSWithKeys(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caPEM, _ := issue(t, "test CA", nil, nil, false)
	_, _, srvPEM, srvKeyPEM := issue(t, "frontend", ca, caKey, true)
	_, _, cliPEM, cliKeyPEM := issue(t, "takedown-worker", ca, caKey, false)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pair, err := tls.X509KeyPair(srvPEM, srvKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	type seen struct{ auth, client string }
	got := make(chan seen, 8)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			md, _ := metadata.FromIncomingContext(stream.Context())
			s := seen{}
			if a := md.Get("authorization"); len(a) > 0 {
				s.auth = a[0]
			}
			if p, ok := peer.FromContext(stream.Context()); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
					s.client = ti.State.PeerCertificates[0].Subject.CommonName
				}
			}
			got <- s
			return status.Error(codes.Unavailable, "a stand-in")
		}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Stop()

	cfg := Config{TemporalAddress: l.Addr().String(), Namespace: "takedown", TemporalTLSCA: write("ca.pem", caPEM),
		TemporalTLSCert: write("client.pem", cliPEM), TemporalTLSKey: write("client.key", cliKeyPEM), TemporalAPIKey: write("api.key", []byte("tdk_secret_123\n"))}
	opts := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace}
	if err := connectTemporal(cfg, &opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.DialContext(ctx, opts); err == nil {
		c.Close()
	}
	select {
	case s := <-got:
		if s.auth != "Bearer tdk_secret_123" || s.client != "takedown-worker" {
			t.Fatalf("the frontend saw authorization %q and client certificate %q", s.auth, s.client)
		}
	case <-ctx.Done():
		t.Fatal("no call reached the frontend over TLS")
	}
}
