package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/client"
)

// The -w json views of clover audit, in the convention of jsonview.go.
// Times of the log are nanoseconds since the Unix epoch, which exceed 2^53:
// they are decimal strings, as protojson writes an int64. Hashes (key
// HMACs, roots) are lowercase hex.

type jsonAuditEntry struct {
	TimeUnixNano      string       `json:"timeUnixNano"`
	Caller            string       `json:"caller"`
	CallerFingerprint string       `json:"callerFingerprint"`
	CallerCountry     string       `json:"callerCountry"`
	CallerRoles       []string     `json:"callerRoles"`
	CallerAddr        string       `json:"callerAddr"`
	ViaNode           string       `json:"viaNode"`
	Node              string       `json:"node"`
	NodeLocality      jsonLocality `json:"nodeLocality"`
	Operation         string       `json:"operation"`
	Keyspace          string       `json:"keyspace"`
	ShardID           uint64       `json:"shardId"`
	KeyHmac           string       `json:"keyHmac"` // "" when the request named no key
	MoreKeyHmacs      []string     `json:"moreKeyHmacs"`
	Keys              uint32       `json:"keys"`
	Result            string       `json:"result"`
	Rule              string       `json:"rule"`
	Detail            string       `json:"detail"`
	Consistency       string       `json:"consistency"`
}

type jsonAuditRecord struct {
	Stream  string         `json:"stream"`
	ShardID uint64         `json:"shardId"`
	Index   uint64         `json:"index"`
	Entry   jsonAuditEntry `json:"entry"`
}

func auditRecordJSON(r *pb.AuditRecord) jsonAuditRecord {
	e := r.GetEntry()
	loc := e.GetNodeLocality()
	return jsonAuditRecord{Stream: r.GetStream(), ShardID: r.GetShardId(), Index: r.GetIndex(), Entry: jsonAuditEntry{
		TimeUnixNano: strconv.FormatInt(e.GetTimeUnixNano(), 10), Caller: e.GetCaller(), CallerFingerprint: e.GetCallerFingerprint(),
		CallerCountry: e.GetCallerCountry(), CallerRoles: strs(e.GetCallerRoles()), CallerAddr: e.GetCallerAddr(), ViaNode: e.GetViaNode(),
		Node: e.GetNode(), NodeLocality: jsonLocality{Country: loc.GetCountry(), Region: loc.GetRegion(), Zone: loc.GetZone()},
		Operation: e.GetOperation(), Keyspace: e.GetKeyspace(), ShardID: e.GetShardId(), KeyHmac: hex.EncodeToString(e.GetKeyHmac()),
		MoreKeyHmacs: list(e.GetMoreKeyHmacs(), hex.EncodeToString),
		Keys:         e.GetKeys(), Result: e.GetResult(), Rule: e.GetRule(), Detail: e.GetDetail(), Consistency: e.GetConsistency()}}
}

// auditHeader is the table header of records.
const auditHeader = "TIME\tCALLER\tCOUNTRY\tNODE\tOP\tKEYSPACE\tSHARD\tRESULT\tRULE\tKEY HMAC"

// recordRow is a record in the table: no key, only the first 8 bytes of
// its HMAC, and for a batch how many more keys it names.
func recordRow(r *pb.AuditRecord) []string {
	e := r.GetEntry()
	key := "-"
	if h := e.GetKeyHmac(); len(h) > 0 {
		key = hex.EncodeToString(h[:min(len(h), 8)])
	}
	if more := len(e.GetMoreKeyHmacs()); more > 0 {
		key += fmt.Sprintf(" +%d", more)
	}
	return []string{nanoTime(e.GetTimeUnixNano()), text(e.GetCaller()), text(e.GetCallerCountry()), text(e.GetNode()),
		text(e.GetOperation()), text(e.GetKeyspace()), strconv.FormatUint(e.GetShardId(), 10), text(e.GetResult()), text(e.GetRule()), key}
}

// showRecords prints records: tail, search.
func (g *globals) showRecords(recs []*pb.AuditRecord) error {
	if g.output == "json" {
		return g.printJSON(list(recs, auditRecordJSON))
	}
	return g.table(auditHeader, list(recs, recordRow))
}

// recordPrinter prints records as they come (--follow): in JSON one
// object a line (JSON Lines), in a table the header once.
type recordPrinter struct {
	g      *globals
	header bool
}

func (p *recordPrinter) print(recs []*pb.AuditRecord) error {
	if p.g.output == "json" {
		return jsonLines(p.g, list(recs, auditRecordJSON))
	}
	if len(recs) == 0 && p.header {
		return nil
	}
	header := auditHeader
	if p.header {
		header = ""
	}
	p.header = true
	return p.g.tableRows(header, list(recs, recordRow))
}

// jsonLines writes each value on a line of its own.
func jsonLines[T any](g *globals, vs []T) error {
	enc := json.NewEncoder(g.out)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// tableRows is table without a header line when header is "".
func (g *globals) tableRows(header string, rows [][]string) error {
	if header != "" {
		return g.table(header, rows)
	}
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	sub := &globals{out: &b}
	if err := sub.table(strings.Repeat("\t", len(rows[0])-1), rows); err != nil {
		return err
	}
	_, body, _ := strings.Cut(b.String(), "\n")
	_, err := fmt.Fprint(g.out, body)
	return err
}

type jsonAuditIncident struct {
	TimeUnixNano  string `json:"timeUnixNano"`
	Kind          string `json:"kind"`
	Keyspace      string `json:"keyspace"`
	Caller        string `json:"caller"`
	CallerCountry string `json:"callerCountry"`
	Rule          string `json:"rule"`
	Operation     string `json:"operation"`
	Detail        string `json:"detail"`
	Stream        string `json:"stream"`
	ShardID       uint64 `json:"shardId"`
	Index         uint64 `json:"index"`
	Node          string `json:"node"`
}

func auditIncidentJSON(i *pb.AuditIncident) jsonAuditIncident {
	return jsonAuditIncident{TimeUnixNano: strconv.FormatInt(i.GetTimeUnixNano(), 10), Kind: i.GetKind(), Keyspace: i.GetKeyspace(),
		Caller: i.GetCaller(), CallerCountry: i.GetCallerCountry(), Rule: i.GetRule(), Operation: i.GetOperation(), Detail: i.GetDetail(),
		Stream: i.GetStream(), ShardID: i.GetShardId(), Index: i.GetIndex(), Node: i.GetNode()}
}

const incidentHeader = "TIME\tKIND\tKEYSPACE\tCALLER\tCOUNTRY\tOP\tRULE\tNODE\tRECORD\tDETAIL"

func incidentRow(i *pb.AuditIncident) []string {
	return []string{nanoTime(i.GetTimeUnixNano()), text(i.GetKind()), text(i.GetKeyspace()), text(i.GetCaller()), text(i.GetCallerCountry()),
		text(i.GetOperation()), text(i.GetRule()), text(i.GetNode()), fmt.Sprintf("%s#%d", i.GetStream(), i.GetIndex()), text(i.GetDetail())}
}

// showIncidents prints incidents.
func (g *globals) showIncidents(incs []*pb.AuditIncident) error {
	if g.output == "json" {
		return g.printJSON(list(incs, auditIncidentJSON))
	}
	return g.table(incidentHeader, list(incs, incidentRow))
}

// incidentPrinter prints incidents as they come (--follow), each once.
type incidentPrinter struct {
	g      *globals
	header bool
	// seen: the incidents printed, by record and kind; last: the newest
	// one's time, where the next poll starts.
	seen map[string]bool
	last time.Time
}

func (p *incidentPrinter) print(incs []*pb.AuditIncident) error {
	var fresh []*pb.AuditIncident
	for _, i := range incs {
		id := fmt.Sprintf("%s#%d/%s/%s", i.GetStream(), i.GetIndex(), i.GetKind(), i.GetCaller())
		if p.seen[id] {
			continue
		}
		p.seen[id] = true
		fresh = append(fresh, i)
		if t := time.Unix(0, i.GetTimeUnixNano()); t.After(p.last) {
			p.last = t
		}
	}
	if p.g.output == "json" {
		return jsonLines(p.g, list(fresh, auditIncidentJSON))
	}
	if len(fresh) == 0 && p.header {
		return nil
	}
	header := incidentHeader
	if p.header {
		header = ""
	}
	p.header = true
	return p.g.tableRows(header, list(fresh, incidentRow))
}

type jsonCheckpoint struct {
	Stream       string `json:"stream"`
	Keyspace     string `json:"keyspace"`
	ShardID      uint64 `json:"shardId"`
	Size         uint64 `json:"size"`
	Root         string `json:"root"`
	Signer       string `json:"signer"`
	TimeUnixNano string `json:"timeUnixNano"`
	// Attested: the signer's certificate chains to the cluster CA.
	Attested bool `json:"attested"`
}

func checkpointJSON(s checkpointSummary) jsonCheckpoint {
	return jsonCheckpoint{Stream: s.sc.GetStream(), Keyspace: s.sc.GetKeyspace(), ShardID: s.sc.GetShardId(), Size: s.cp.Size,
		Root: hex.EncodeToString(s.cp.Root[:]), Signer: s.sc.GetSigner(), TimeUnixNano: strconv.FormatInt(s.cp.Time.UnixNano(), 10), Attested: s.attested}
}

// showCheckpoints prints the checkpoints written to a file.
func (g *globals) showCheckpoints(sums []checkpointSummary) error {
	if g.output == "json" {
		return g.printJSON(list(sums, checkpointJSON))
	}
	rows := list(sums, func(s checkpointSummary) []string {
		return []string{s.sc.GetStream(), orDash(s.sc.GetKeyspace()), strconv.FormatUint(s.sc.GetShardId(), 10), strconv.FormatUint(s.cp.Size, 10),
			hex.EncodeToString(s.cp.Root[:8]), s.sc.GetSigner(), s.cp.Time.UTC().Format(time.RFC3339Nano), yesNo(s.attested)}
	})
	return g.table("STREAM\tKEYSPACE\tSHARD\tSIZE\tROOT\tSIGNER\tTIME\tATTESTED", rows)
}

type jsonAuditProblem struct {
	Stream string `json:"stream"`
	Node   string `json:"node"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func problemJSON(p audit.Problem) jsonAuditProblem {
	return jsonAuditProblem{Stream: p.Stream, Node: p.Node, Kind: p.Kind, Detail: p.Detail}
}

type jsonAuditNode struct {
	Node     string             `json:"node"`
	Addr     string             `json:"addr"`
	OldSize  uint64             `json:"oldSize"`
	NewSize  uint64             `json:"newSize"`
	Attested bool               `json:"attested"`
	Status   string             `json:"status"`
	Problems []jsonAuditProblem `json:"problems"`
}

type jsonAuditStreamReport struct {
	Stream   string             `json:"stream"`
	Keyspace string             `json:"keyspace"`
	ShardID  uint64             `json:"shardId"`
	New      bool               `json:"new"`
	KeptSize uint64             `json:"keptSize"`
	Problems []jsonAuditProblem `json:"problems"`
	Nodes    []jsonAuditNode    `json:"nodes"`
}

type jsonAuditReport struct {
	OK bool `json:"ok"`
	// Tampered: a problem other than an unreachable replica (exit 14).
	Tampered bool                    `json:"tampered"`
	Streams  []jsonAuditStreamReport `json:"streams"`
}

func auditReportJSON(rep *client.AuditReport) jsonAuditReport {
	return jsonAuditReport{OK: rep.OK(), Tampered: tampered(rep),
		Streams: list(rep.Streams, func(s client.AuditStreamReport) jsonAuditStreamReport {
			return jsonAuditStreamReport{Stream: s.Stream, Keyspace: s.Keyspace, ShardID: s.ShardID, New: s.New, KeptSize: s.KeptSize,
				Problems: list(s.Problems, problemJSON),
				Nodes: list(s.Nodes, func(n client.AuditNodeReport) jsonAuditNode {
					return jsonAuditNode{Node: n.Node, Addr: n.Addr, OldSize: n.OldSize, NewSize: n.NewSize, Attested: n.Attested,
						Status: problemsStatus(n.Problems), Problems: list(n.Problems, problemJSON)}
				})}
		})}
}

// tampered reports whether rep holds a problem other than an unreachable
// replica.
func tampered(rep *client.AuditReport) bool {
	for _, p := range rep.Problems() {
		if p.Kind != client.AuditUnreachable {
			return true
		}
	}
	return false
}

// problemsStatus is the status of a replica: OK, or its first problem's
// kind in capitals (TRUNCATED, REWRITTEN, ENTRY, SIGNATURE, PROOF,
// UNREACHABLE, MISSING).
func problemsStatus(ps []audit.Problem) string {
	if len(ps) == 0 {
		return "OK"
	}
	return strings.ToUpper(ps[0].Kind)
}

// showAuditReport prints what audit verify found, a line per stream and
// replica.
func (g *globals) showAuditReport(rep *client.AuditReport) error {
	if g.output == "json" {
		return g.printJSON(auditReportJSON(rep))
	}
	var rows [][]string
	for _, s := range rep.Streams {
		shard := strconv.FormatUint(s.ShardID, 10)
		switch {
		case s.New:
			rows = append(rows, []string{s.Stream, orDash(s.Keyspace), shard, "-", "-", "-", "NEW", "-", "new stream, not in the kept checkpoints: not verified"})
			continue
		case len(s.Problems) > 0:
			for _, p := range s.Problems {
				rows = append(rows, []string{s.Stream, orDash(s.Keyspace), shard, orDash(p.Node), strconv.FormatUint(s.KeptSize, 10), "-",
					strings.ToUpper(p.Kind), "-", text(p.Detail)})
			}
		}
		for _, n := range s.Nodes {
			detail := "extends the kept checkpoint"
			if len(n.Problems) > 0 {
				ds := list(n.Problems, func(p audit.Problem) string { return p.Detail })
				detail = text(strings.Join(ds, "; "))
			}
			rows = append(rows, []string{s.Stream, orDash(s.Keyspace), shard, n.Node, strconv.FormatUint(n.OldSize, 10),
				strconv.FormatUint(n.NewSize, 10), problemsStatus(n.Problems), yesNo(n.Attested), detail})
		}
	}
	if err := g.table("STREAM\tKEYSPACE\tSHARD\tNODE\tKEPT\tNOW\tSTATUS\tATTESTED\tDETAIL", rows); err != nil {
		return err
	}
	var bad, unreachable int
	for _, p := range rep.Problems() {
		if p.Kind == client.AuditUnreachable {
			unreachable++
		} else {
			bad++
		}
	}
	verdict := "every replica extends its kept checkpoint"
	switch {
	case bad > 0:
		verdict = fmt.Sprintf("TAMPERING DETECTED: %d problems, %d replicas unreachable", bad, unreachable)
	case unreachable > 0:
		verdict = fmt.Sprintf("NOT VERIFIED: %d replicas unreachable", unreachable)
	}
	fmt.Fprintln(g.out, verdict)
	return nil
}

// nanoTime formats nanoseconds since the epoch, UTC, to the millisecond.
func nanoTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000Z")
}

// text is a string of the log for a table cell: "-" when empty, quoted
// when it holds a byte a terminal must not receive (cell).
func text(s string) string {
	if s == "" {
		return "-"
	}
	return cell([]byte(s))
}
