// Package client is the Go client of Clover, a key-value store that keeps
// each keyspace's data inside the jurisdictions its policy permits.
//
//	c, err := client.New(ctx, client.Config{Insecure: true, Endpoints: []string{"127.0.0.1:7401"}})
//	if err != nil { ... }
//	defer c.Close()
//	v, err := c.Put(ctx, "users", []byte("user/42"), []byte(`{"name":"Aoife"}`))
//	kv, err := c.Get(ctx, "users", []byte("user/42"))                    // linearizable
//	kv, err = c.Get(ctx, "users", []byte("user/42"), client.Follower(time.Second)) // bounded staleness
//	_, err = c.CompareAndSwap(ctx, "users", []byte("user/42"), kv.Version, newValue)
//	if errors.Is(err, client.ErrVersionMismatch) { ... }
//
// The client caches the cluster's routing table and sends each request to
// its shard's leader, following leader hints and retrying transient failures
// under Config.Retry. Reads are retried on any transient failure. Writes
// (Put, Delete, CompareAndSwap, CompareAndDelete, Batch) are retried only
// when the node certainly did not apply them: it answered that it is not
// the leader, or the client knows it never sent the request (no connection
// to the node, the request still queued when its stream broke; see
// sent.go). A write that failed after it may have been applied returns an
// error matching both ErrUnavailable and ErrOutcomeUnknown, and is not sent
// again, since applying it twice could undo a write made in between.
//
// Connections are pinged when nothing arrives on them for
// Config.KeepaliveTime (10s), and closed when a ping goes unanswered for
// Config.KeepaliveTimeout (5s): a node that stops answering without
// closing its connections is noticed then, not at each request's deadline.
//
// Errors are sentinels tested with errors.Is (ErrNotFound,
// ErrVersionMismatch, ErrResidency, ErrUnavailable, ErrUnknownKeyspace,
// ErrInvalidArgument, ...); errors.As with *Error gives details such as the
// endpoints permitted to serve a keyspace after a residency refusal.
package client
