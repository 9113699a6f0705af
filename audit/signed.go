package audit

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/identity"
)

// adminStream is the name of the meta group's stream; a shard's is
// "shard/<id>".
const adminStream = "admin"

// VerifySigned checks a checkpoint as a node sent it and returns what its
// note says.
//
// With sc.SignerCert (secure mode) the certificate must chain to roots
// (any extended key usage) at the checkpoint's time, be a node certificate
// (package identity) of trust domain cluster named sc.Signer, and its key
// must have signed the note; sc.SignerKey, if set, must be that key. The
// result is attested. The time is the note's own: a checkpoint a node
// signed while its certificate was valid stays verifiable once it expires,
// and the caller judges freshness from cp.Time.
//
// Without a certificate (insecure mode) the note must verify with
// sc.SignerKey (PKIX DER), a key nothing attests: attested is false.
//
// Either way the note's origin must be Origin(cluster, sc.Stream), the
// stream must be "admin" with shard 0 or "shard/<sc.ShardId>", and the
// display fields sc.Size, sc.Root and sc.TimeUnixNano must equal the
// note's. Errors wrap ErrBadCertificate, ErrBadSignature or
// ErrBadCheckpoint.
func VerifySigned(sc *cloverv1.SignedCheckpoint, roots *x509.CertPool, cluster string) (cp Checkpoint, attested bool, err error) {
	if sc == nil {
		return Checkpoint{}, false, fmt.Errorf("%w: no checkpoint", ErrBadCheckpoint)
	}
	if err := checkStreamName(sc.Stream, sc.ShardId); err != nil {
		return Checkpoint{}, false, err
	}
	var cert *x509.Certificate
	var pub crypto.PublicKey
	if len(sc.SignerCert) > 0 {
		if cert, err = signerCertificate(sc, cluster); err != nil {
			return Checkpoint{}, false, err
		}
		pub = cert.PublicKey
	} else {
		if len(sc.SignerKey) == 0 {
			return Checkpoint{}, false, fmt.Errorf("%w: checkpoint of %q has neither a certificate nor a key", ErrBadSignature, clip(sc.Signer))
		}
		if pub, err = x509.ParsePKIXPublicKey(sc.SignerKey); err != nil {
			return Checkpoint{}, false, fmt.Errorf("%w: signer key of %q: %w", ErrBadSignature, clip(sc.Signer), err)
		}
	}
	if cp, err = OpenCheckpoint(sc.Note, sc.Signer, pub); err != nil {
		return Checkpoint{}, false, err
	}
	if cert != nil {
		if err := verifyChain(cert, roots, cp); err != nil {
			return Checkpoint{}, false, err
		}
	}
	if want := Origin(cluster, sc.Stream); cp.Origin != want {
		return Checkpoint{}, false, fmt.Errorf("%w: origin %q, want %q", ErrBadCheckpoint, clip(cp.Origin), clip(want))
	}
	if sc.Size != cp.Size || !bytes.Equal(sc.Root, cp.Root[:]) || sc.TimeUnixNano != cp.Time.UnixNano() {
		return Checkpoint{}, false, fmt.Errorf("%w: the checkpoint says size %d root %x time %d, its note size %d root %x time %d",
			ErrBadCheckpoint, sc.Size, sc.Root, sc.TimeUnixNano, cp.Size, cp.Root[:], cp.Time.UnixNano())
	}
	return cp, cert != nil, nil
}

// checkStreamName checks that stream is "admin" with shard 0 or
// "shard/<shard>".
func checkStreamName(stream string, shard uint64) error {
	if stream == adminStream && shard == 0 {
		return nil
	}
	if id, ok := strings.CutPrefix(stream, "shard/"); ok && id == strconv.FormatUint(shard, 10) && shard != 0 {
		return nil
	}
	return fmt.Errorf("%w: stream %q of shard %d: want \"admin\" (shard 0) or \"shard/<shard id>\"", ErrBadCheckpoint, clip(stream), shard)
}

// signerCertificate parses sc's certificate and checks that it names node
// sc.Signer of cluster and holds sc.SignerKey when that is set. It does
// not check the chain (verifyChain does, at the note's time).
func signerCertificate(sc *cloverv1.SignedCheckpoint, cluster string) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(sc.SignerCert)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	id, err := identity.FromCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	switch {
	case id.Kind != identity.Node:
		return nil, fmt.Errorf("%w: a %s certificate (%s), not a node's", ErrBadCertificate, id.Kind, id.URI())
	case id.TrustDomain != cluster:
		return nil, fmt.Errorf("%w: node %s belongs to cluster %q, not %q", ErrBadCertificate, id.Name, id.TrustDomain, clip(cluster))
	case id.Name != sc.Signer:
		return nil, fmt.Errorf("%w: the certificate is node %s's, the checkpoint's signer is %q", ErrBadCertificate, id.Name, clip(sc.Signer))
	}
	if len(sc.SignerKey) > 0 {
		der, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
		if err != nil || !bytes.Equal(der, sc.SignerKey) {
			return nil, fmt.Errorf("%w: the signer key is not the key of node %s's certificate", ErrBadCertificate, id.Name)
		}
	}
	return cert, nil
}

// verifyChain checks that cert chains to roots at cp's time.
func verifyChain(cert *x509.Certificate, roots *x509.CertPool, cp Checkpoint) error {
	if roots == nil {
		return fmt.Errorf("%w: no cluster CA to verify the certificate against", ErrBadCertificate)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: cp.Time,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: at %s: %w", ErrBadCertificate, cp.Time.Format("2006-01-02T15:04:05Z07:00"), err)
	}
	return nil
}
