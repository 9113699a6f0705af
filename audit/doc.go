// Package audit is the cryptographic core of Clover's tamper-evident audit
// log: the encoding of entries, the Merkle tree and its proofs, signed
// checkpoints, and the checks an auditor runs on a copy of a log. It is
// pure: values in, values out; no server, no network, and no clock but
// the times callers pass.
//
// # The model
//
// Every shard of an audited keyspace keeps an audit stream, "shard/<id>",
// in its Raft state machine, and the meta group keeps one for
// administration, "admin". A stream is an append-only Merkle tree log with
// RFC 6962 hashing (golang.org/x/mod/sumdb/tlog, the log behind Go's
// checksum database): leaf i is the deterministic protobuf encoding of the
// i-th AuditEntry (EncodeEntry), hashed as SHA-256(0x00 || leaf)
// (LeafHash). An entry records who asked what of which keyspace and the
// decision, never a key or value: a request's key appears only as
// HMAC-SHA256 under the keyspace's secret salt (KeyHMAC), so equal keys
// can be matched by someone who holds the salt and read by no one.
//
// A node publishes its stream's tree head as a checkpoint, a signed note
// (golang.org/x/mod/sumdb/note) whose text is exactly
//
//	clover-audit/<cluster>/<stream>
//	<tree size>
//	<root hash, standard base64>
//	time <RFC 3339 UTC, nanoseconds>
//
// signed by the node (signer name: its node ID) with its TLS key, ECDSA
// P-256, or an Ed25519 key. The origin line binds the checkpoint to one
// stream of one cluster. Ed25519 signatures use sumdb/note's algorithm
// byte 0x01 and key hash, so note.NewVerifier checks them too; ECDSA P-256
// signatures, which sumdb/note does not define, use algorithm byte 0xC1,
// a key hash over SHA-256(name + "\n" + 0xC1 + PKIX DER of the public
// key), and ASN.1 ECDSA signatures over SHA-256 of the text. In secure mode
// the node's certificate comes with the checkpoint and VerifySigned checks
// that the cluster CA issued it to that node; in insecure mode only a bare
// key comes, and the result is marked unattested.
//
// An auditor keeps checkpoints. Later it asks a node for a newer
// checkpoint and a consistency proof from the kept size, and for the
// stream's records; CheckStream verifies that the new tree extends the
// kept one (nothing was removed or rewritten), rebuilds the tree from the
// leaves to see that they are exactly what both checkpoints sign, and
// reports each problem it finds. A node that rewrote history cannot pass:
// recomputing the hashes after changing a leaf changes every root above
// it, so either the consistency proof fails against the kept root or the
// records no longer hash to it. All proof arithmetic is tlog's; this
// package only converts sizes and hashes and refuses malformed input with
// errors, never panics.
//
// Incidents derives the events an auditor looks at (refusals, a caller
// country new to a keyspace, bursts of requests) as a pure function of the
// records, so anyone holding an export (WriteExport, ReadExport: JSON
// Lines with each leaf, its hash and its entry) can recompute them.
//
// # Use
//
// A node, appending and publishing:
//
//	leaf, err := audit.EncodeEntry(entry)
//	// ... the state machine stores leaf and tlog.StoredHashes for it ...
//	note, err := audit.SignCheckpoint(audit.Checkpoint{
//		Origin: audit.Origin(cluster, "shard/3"), Size: size, Root: root, Time: now,
//	}, nodeID, tlsKey)
//	proof, err := audit.ProveConsistency(oldSize, size, hashReader)
//
// An auditor, verifying:
//
//	now, attested, err := audit.VerifySigned(signed, caPool, cluster)
//	problems := audit.CheckStream("shard/3", signed.Signer, kept, now, resp.Consistency, records)
//	for _, p := range problems { fmt.Println(p) }
//
// Errors wrap the sentinels of errors.go; test with errors.Is.
package audit
