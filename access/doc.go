// Package access decides, at the door, whether a caller may do what it
// asks: plain values in (the caller's attested identity, the operation,
// the keyspace's class, residency and access policy), a Decision out,
// naming the rule that allowed or refused it. It does no I/O and knows
// nothing of gRPC or certificates; the server turns a verified certificate
// into a Caller, a method into an Op, a keyspace record into a Keyspace,
// and calls Decide once per request before it reads or forwards anything.
//
//	d := access.Decide(caller, access.Read, &ks)
//	if !d.Allowed {
//		return status.Error(codes.PermissionDenied, d.Error())
//	}
//
// The rules, in the order Decide applies them:
//
//  1. Insecure mode (Caller.Kind Unattested): everything is allowed and the
//     decision says so (RuleInsecure). Nothing is attested, so nothing can
//     be decided; secure mode is the default and the node says when it is
//     not.
//  2. Nodes: only a node may call the Internal service and speak Raft and
//     gossip (RuleNodeOnly); a node is not a user, and may read or write a
//     keyspace only on behalf of a user whose request another node let in
//     and forwarded (RuleNodeNotUser). A node touches a keyspace's data,
//     forwarding or through the Internal service, only if the keyspace may
//     live in the node's own attested country (RuleNodeNotUser), so a node
//     outside a keyspace's residency gets nothing of it however it asks.
//  3. Roles: each operation needs a role (RuleRole): data reads a read role
//     of the keyspace (reader by default), data writes a write role (writer
//     by default), administration admin, the placement proof (status,
//     verify, history, check) auditor or admin; routing and whoami any
//     user. An auditor never reads or writes a key or value of any
//     keyspace, whatever a keyspace's access policy lists.
//  4. Caller jurisdiction: a data operation comes from a caller whose
//     country is inside the keyspace's caller jurisdictions
//     (RuleCallerJurisdiction). By default that is the keyspace's residency
//     for class personal and anywhere for class public, so a reader working
//     from CN or US is refused a personal EEA keyspace even through an EEA
//     node, and may read a public one.
//  5. Anything else is refused (RuleDefaultDeny).
//
// Guardrail.Check is the cluster-wide limit set at bootstrap that no admin
// request can cross: a personal keyspace's residency and caller
// jurisdictions stay inside the guardrail's countries, and a personal
// keyspace cannot be made public.
package access
