package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File modes: keys are private to their owner, certificates readable.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// The files of a directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// NodeFiles returns the certificate and key file names of node id.
func NodeFiles(id string) (cert, key string) { return "node." + id + ".crt", "node." + id + ".key" }

// UserFiles returns the certificate and key file names of user name.
func UserFiles(name string) (cert, key string) {
	return "user." + name + ".crt", "user." + name + ".key"
}

// writePair writes a key and its certificate as PEM files: neither may
// exist unless overwrite. On failure it leaves no new file behind.
func writePair(certPath, keyPath string, certDER []byte, key *ecdsa.PrivateKey, overwrite bool) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if !overwrite {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%w: %s (nothing was written)", ErrExists, p)
			}
		}
	}
	if err := writeFile(keyPath, pemBytes("PRIVATE KEY", keyDER), keyMode, overwrite); err != nil {
		return err
	}
	if err := writeFile(certPath, pemBytes("CERTIFICATE", certDER), certMode, overwrite); err != nil {
		if !overwrite {
			os.Remove(keyPath)
		}
		return err
	}
	return nil
}

// writeFile writes data to path with mode (whatever the umask). Without
// overwrite it fails with ErrExists if path exists; with it, it replaces
// path in one rename.
func writeFile(path string, data []byte, mode fs.FileMode, overwrite bool) error {
	var f *os.File
	var err error
	if overwrite {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExists, path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(mode), f.Sync(), f.Close())
	if err == nil && overwrite {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func pemBytes(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// readCert reads the one PEM certificate in path.
func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadFile, path, err)
	}
	return c, nil
}

// readKey reads the PKCS #8 PEM private key in path; it must be the key of
// cert.
func readKey(path string, cert *x509.Certificate) (crypto.Signer, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadFile, path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %s: not a signing key", ErrBadFile, path)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: %s is not the key of its certificate", ErrBadFile, path)
	}
	return signer, nil
}

// readPEM returns the DER of the first PEM block in path, which must be of
// kind.
func readPEM(path, kind string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != kind {
		return nil, fmt.Errorf("%w: %s holds no PEM %s", ErrBadFile, path, kind)
	}
	return block.Bytes, nil
}
