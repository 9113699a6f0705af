package bench

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// Request and scan-length distributions.
const (
	DistUniform  = "uniform"
	DistZipfian  = "zipfian"
	DistLatest   = "latest"
	DistConstant = "constant"
)

// Insert orders.
const (
	InsertHashed  = "hashed"
	InsertOrdered = "ordered"
)

// Config is a workload and how to run it, as set by YCSB's core-workload
// properties. Build it with ParseConfig; DefaultConfig holds the defaults.
type Config struct {
	// RecordCount (recordcount) is the number of records loaded, and the key
	// range the run phase reads and updates. Default 1000.
	RecordCount int64
	// OperationCount (operationcount) is the number of measured operations of
	// the run phase; 0 means no limit (then MaxExecutionTime is required).
	// Default 1000.
	OperationCount int64
	// InsertStart and InsertCount (insertstart, insertcount) select the
	// records the load phase inserts: [InsertStart, InsertStart+InsertCount).
	// Defaults 0 and RecordCount-InsertStart.
	InsertStart, InsertCount int64
	// ThreadCount (threadcount) is the number of concurrent clients. Default 1.
	ThreadCount int
	// Target (target) is the total rate in operations per second across all
	// clients; 0 runs unthrottled. With a target, operations are scheduled at
	// fixed intended times and latency counts from the intended start.
	Target float64
	// MaxExecutionTime (maxexecutiontime, seconds or a duration) bounds the
	// measured part of a phase; 0 means no bound.
	MaxExecutionTime time.Duration
	// WarmupTime (warmuptime, seconds or a duration) runs the workload first
	// without measuring it. Default 0.
	WarmupTime time.Duration

	// FieldCount (fieldcount) must be 1: one value per key.
	FieldCount int
	// FieldLength (fieldlength) is the value size in bytes. Default 256.
	FieldLength int
	// FieldLengthDistribution (fieldlengthdistribution) is constant (every
	// value FieldLength bytes) or uniform (1..FieldLength). Default constant.
	FieldLengthDistribution string
	// KeyPrefix (keyprefix) starts every key. Default "user".
	KeyPrefix string
	// KeyLength (keylength) is the key size in bytes: the record number (or
	// its hash) is zero-padded or cut to its last digits to fit. 0 keeps
	// YCSB's variable-length keys. Default 16.
	KeyLength int

	// Operation mix (readproportion, updateproportion, insertproportion,
	// scanproportion, readmodifywriteproportion): relative weights, need not
	// sum to 1. Defaults 0.95 read, 0.05 update.
	ReadProportion, UpdateProportion, InsertProportion, ScanProportion, ReadModifyWriteProportion float64

	// RequestDistribution (requestdistribution) picks the keys of reads,
	// updates and scans: uniform, zipfian (scrambled, popular keys spread
	// over the key space) or latest (recent inserts are popular). Default
	// uniform.
	RequestDistribution string
	// ZipfianConstant (zipfianconstant). Default 0.99.
	ZipfianConstant float64
	// MinScanLength and MaxScanLength (minscanlength, maxscanlength) bound
	// the number of records a scan asks for. Defaults 1 and 1000.
	MinScanLength, MaxScanLength int
	// ScanLengthDistribution (scanlengthdistribution): uniform or zipfian.
	// Default uniform.
	ScanLengthDistribution string
	// InsertOrder (insertorder): hashed (keys are a hash of the record
	// number, so inserts spread over the key space) or ordered. Default
	// hashed.
	InsertOrder string
	// Seed (seed) seeds the random choices; 0 picks one at random.
	Seed uint64
}

// DefaultConfig returns the defaults: YCSB's core-workload defaults, except
// one 256-byte value per record and 16-byte keys.
func DefaultConfig() Config {
	return Config{
		RecordCount:             1000,
		OperationCount:          1000,
		InsertCount:             1000,
		ThreadCount:             1,
		FieldCount:              1,
		FieldLength:             256,
		FieldLengthDistribution: DistConstant,
		KeyPrefix:               "user",
		KeyLength:               16,
		ReadProportion:          0.95,
		UpdateProportion:        0.05,
		RequestDistribution:     DistUniform,
		ZipfianConstant:         0.99,
		MinScanLength:           1,
		MaxScanLength:           1000,
		ScanLengthDistribution:  DistUniform,
		InsertOrder:             InsertHashed,
	}
}

// ignoredProperties are YCSB properties that make no difference here.
var ignoredProperties = []string{
	"workload", "db", "readallfields", "writeallfields", "dataintegrity", "table",
	"fieldnameprefix", "exporter", "measurementtype", "measurement.interval",
	"hdrhistogram.percentiles", "histogram.buckets", "status.interval",
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid workload configuration")

// ParseConfig builds a Config from properties over DefaultConfig and
// validates it. It also returns the keys it does not know, so that callers
// can warn about typos.
func ParseConfig(p Properties) (Config, []string, error) {
	c := DefaultConfig()
	var errs []error
	i64 := func(key string, dst *int64) {
		v, err := p.Int(key, *dst)
		errs = append(errs, err)
		*dst = v
	}
	i := func(key string, dst *int) {
		v, err := p.Int(key, int64(*dst))
		if err == nil && (v > math.MaxInt32 || v < math.MinInt32) {
			err = fmt.Errorf("property %s=%d: out of range", key, v)
		}
		errs = append(errs, err)
		*dst = int(v)
	}
	f := func(key string, dst *float64) {
		v, err := p.Float(key, *dst)
		errs = append(errs, err)
		*dst = v
	}
	d := func(key string, dst *time.Duration) {
		v, err := p.Duration(key, *dst)
		errs = append(errs, err)
		*dst = v
	}
	i64("recordcount", &c.RecordCount)
	i64("operationcount", &c.OperationCount)
	i64("insertstart", &c.InsertStart)
	if _, ok := p["insertcount"]; ok {
		i64("insertcount", &c.InsertCount)
	} else {
		c.InsertCount = c.RecordCount - c.InsertStart
	}
	i("threadcount", &c.ThreadCount)
	f("target", &c.Target)
	d("maxexecutiontime", &c.MaxExecutionTime)
	d("warmuptime", &c.WarmupTime)
	i("fieldcount", &c.FieldCount)
	i("fieldlength", &c.FieldLength)
	c.FieldLengthDistribution = p.String("fieldlengthdistribution", c.FieldLengthDistribution)
	c.KeyPrefix = p.String("keyprefix", c.KeyPrefix)
	i("keylength", &c.KeyLength)
	f("readproportion", &c.ReadProportion)
	f("updateproportion", &c.UpdateProportion)
	f("insertproportion", &c.InsertProportion)
	f("scanproportion", &c.ScanProportion)
	f("readmodifywriteproportion", &c.ReadModifyWriteProportion)
	c.RequestDistribution = p.String("requestdistribution", c.RequestDistribution)
	f("zipfianconstant", &c.ZipfianConstant)
	i("minscanlength", &c.MinScanLength)
	i("maxscanlength", &c.MaxScanLength)
	c.ScanLengthDistribution = p.String("scanlengthdistribution", c.ScanLengthDistribution)
	c.InsertOrder = p.String("insertorder", c.InsertOrder)
	if s, ok := p["seed"]; ok {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("property seed=%q: want an unsigned integer", s))
		}
		c.Seed = v
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if !slices.Contains(knownProperties, k) && !slices.Contains(ignoredProperties, k) {
			unknown = append(unknown, k)
		}
	}
	return c, unknown, c.Validate()
}

var knownProperties = []string{
	"recordcount", "operationcount", "insertstart", "insertcount", "threadcount", "target",
	"maxexecutiontime", "warmuptime", "fieldcount", "fieldlength", "fieldlengthdistribution",
	"keyprefix", "keylength", "readproportion", "updateproportion", "insertproportion",
	"scanproportion", "readmodifywriteproportion", "requestdistribution", "zipfianconstant",
	"minscanlength", "maxscanlength", "scanlengthdistribution", "insertorder", "seed",
}

// Validate reports every problem with the config, naming the property and
// its value. It changes nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.RecordCount < 0 || c.InsertStart < 0 || c.InsertCount < 0 || c.OperationCount < 0 {
		bad("recordcount=%d, insertstart=%d, insertcount=%d, operationcount=%d: none may be negative",
			c.RecordCount, c.InsertStart, c.InsertCount, c.OperationCount)
	}
	if c.ThreadCount < 1 {
		bad("threadcount=%d: want at least 1", c.ThreadCount)
	}
	if c.Target < 0 || c.MaxExecutionTime < 0 || c.WarmupTime < 0 {
		bad("target=%v, maxexecutiontime=%v, warmuptime=%v: none may be negative", c.Target, c.MaxExecutionTime, c.WarmupTime)
	}
	if c.FieldCount != 1 {
		bad("fieldcount=%d: only 1 is supported (one value per key)", c.FieldCount)
	}
	if c.FieldLength < 1 {
		bad("fieldlength=%d: want at least 1", c.FieldLength)
	}
	if c.FieldLengthDistribution != DistConstant && c.FieldLengthDistribution != DistUniform {
		bad("fieldlengthdistribution=%q: want constant or uniform", c.FieldLengthDistribution)
	}
	if c.KeyLength != 0 && c.KeyLength < len(c.KeyPrefix)+4 {
		bad("keylength=%d: want 0 or at least the key prefix %q plus 4 digits", c.KeyLength, c.KeyPrefix)
	}
	props := []float64{c.ReadProportion, c.UpdateProportion, c.InsertProportion, c.ScanProportion, c.ReadModifyWriteProportion}
	sum := 0.0
	for _, x := range props {
		if x < 0 || math.IsNaN(x) {
			bad("operation proportions must not be negative")
			break
		}
		sum += x
	}
	if sum <= 0 {
		bad("readproportion, updateproportion, insertproportion, scanproportion and readmodifywriteproportion are all 0")
	}
	switch c.RequestDistribution {
	case DistUniform, DistZipfian, DistLatest:
	default:
		bad("requestdistribution=%q: want uniform, zipfian or latest", c.RequestDistribution)
	}
	if !(c.ZipfianConstant > 0 && c.ZipfianConstant < 1) {
		bad("zipfianconstant=%v: want a value in (0, 1)", c.ZipfianConstant)
	}
	if c.MinScanLength < 1 || c.MaxScanLength < c.MinScanLength {
		bad("minscanlength=%d, maxscanlength=%d: want 1 <= min <= max", c.MinScanLength, c.MaxScanLength)
	}
	if c.ScanLengthDistribution != DistUniform && c.ScanLengthDistribution != DistZipfian {
		bad("scanlengthdistribution=%q: want uniform or zipfian", c.ScanLengthDistribution)
	}
	if c.InsertOrder != InsertHashed && c.InsertOrder != InsertOrdered {
		bad("insertorder=%q: want hashed or ordered", c.InsertOrder)
	}
	if c.RecordCount == 0 && c.ReadProportion+c.UpdateProportion+c.ScanProportion+c.ReadModifyWriteProportion > 0 {
		bad("recordcount=0: reads, updates and scans need records")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Properties renders the config as properties, every key set: the record of
// what a result ran with.
func (c Config) Properties() Properties {
	ff := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	return Properties{
		"recordcount":               strconv.FormatInt(c.RecordCount, 10),
		"operationcount":            strconv.FormatInt(c.OperationCount, 10),
		"insertstart":               strconv.FormatInt(c.InsertStart, 10),
		"insertcount":               strconv.FormatInt(c.InsertCount, 10),
		"threadcount":               strconv.Itoa(c.ThreadCount),
		"target":                    ff(c.Target),
		"maxexecutiontime":          c.MaxExecutionTime.String(),
		"warmuptime":                c.WarmupTime.String(),
		"fieldcount":                strconv.Itoa(c.FieldCount),
		"fieldlength":               strconv.Itoa(c.FieldLength),
		"fieldlengthdistribution":   c.FieldLengthDistribution,
		"keyprefix":                 c.KeyPrefix,
		"keylength":                 strconv.Itoa(c.KeyLength),
		"readproportion":            ff(c.ReadProportion),
		"updateproportion":          ff(c.UpdateProportion),
		"insertproportion":          ff(c.InsertProportion),
		"scanproportion":            ff(c.ScanProportion),
		"readmodifywriteproportion": ff(c.ReadModifyWriteProportion),
		"requestdistribution":       c.RequestDistribution,
		"zipfianconstant":           ff(c.ZipfianConstant),
		"minscanlength":             strconv.Itoa(c.MinScanLength),
		"maxscanlength":             strconv.Itoa(c.MaxScanLength),
		"scanlengthdistribution":    c.ScanLengthDistribution,
		"insertorder":               c.InsertOrder,
		"seed":                      strconv.FormatUint(c.Seed, 10),
	}
}
