package bench

import (
	"context"
	"errors"
	"math/rand/v2"
)

// Workload generates the operations of YCSB's core workload: which operation
// comes next, on which key, with which value. One Workload is shared by all
// workers; each worker draws from it through its own Worker.
type Workload struct {
	cfg     Config
	keys    keyFormat
	values  *valuePool
	load    *Counter    // record numbers of the load phase
	inserts *AckCounter // record numbers of run-phase inserts
	chooser IntGenerator
	scanLen IntGenerator
	ops     opChooser
	seed    uint64
}

// NewWorkload builds a workload from a validated config.
func NewWorkload(cfg Config) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
		cfg.Seed = seed
	}
	w := &Workload{
		cfg:     cfg,
		keys:    keyFormat{prefix: cfg.KeyPrefix, length: cfg.KeyLength, hashed: cfg.InsertOrder == InsertHashed},
		values:  newValuePool(cfg.FieldLength, cfg.FieldLengthDistribution == DistUniform, seed),
		load:    NewCounter(cfg.InsertStart),
		inserts: NewAckCounter(cfg.RecordCount),
		ops: newOpChooser(map[Op]float64{
			OpRead: cfg.ReadProportion, OpUpdate: cfg.UpdateProportion, OpInsert: cfg.InsertProportion,
			OpScan: cfg.ScanProportion, OpReadModifyWrite: cfg.ReadModifyWriteProportion,
		}),
		seed: seed,
	}
	switch cfg.RequestDistribution {
	case DistUniform:
		w.chooser = Uniform{Min: cfg.InsertStart, Max: cfg.InsertStart + max(cfg.InsertCount, 1) - 1}
	case DistZipfian:
		// As YCSB: leave room for the keys the run phase will insert.
		w.chooser = NewScrambledZipfian(cfg.InsertStart, cfg.InsertStart+max(cfg.InsertCount, 1)+w.expectedNewKeys()-1, cfg.ZipfianConstant)
	case DistLatest:
		w.chooser = NewSkewedLatest(w.inserts, cfg.ZipfianConstant)
	}
	if cfg.ScanLengthDistribution == DistZipfian {
		w.scanLen = NewZipfian(int64(cfg.MinScanLength), int64(cfg.MaxScanLength), cfg.ZipfianConstant)
	} else {
		w.scanLen = Uniform{Min: int64(cfg.MinScanLength), Max: int64(cfg.MaxScanLength)}
	}
	return w, nil
}

// expectedNewKeys estimates the inserts of a run phase, twice over (YCSB's
// margin). Without an operation count it assumes as many operations as records.
func (w *Workload) expectedNewKeys() int64 {
	c := w.cfg
	total := c.ReadProportion + c.UpdateProportion + c.InsertProportion + c.ScanProportion + c.ReadModifyWriteProportion
	ops := c.OperationCount
	if ops == 0 {
		ops = c.RecordCount
	}
	return int64(float64(ops) * c.InsertProportion / total * 2)
}

// Config returns the workload's configuration, with the seed it picked
// when none was given.
func (w *Workload) Config() Config { return w.cfg }

// Worker is one client's view of a workload: its own random source and key
// buffer. It is not safe for concurrent use.
type Worker struct {
	w   *Workload
	r   *rand.Rand
	key []byte
}

// NewWorker returns the worker numbered id; workers of one seed and id make
// the same choices.
func (w *Workload) NewWorker(id int) *Worker {
	return &Worker{w: w, r: rand.New(rand.NewPCG(w.seed, uint64(id))), key: make([]byte, 0, 64)}
}

// Step performs one operation of phase against db and returns its type. In
// the load phase done reports that every record has been inserted; no
// operation was performed then.
func (k *Worker) Step(ctx context.Context, db DB, phase Phase) (op Op, done bool, err error) {
	w := k.w
	if phase == PhaseLoad {
		n := w.load.Next()
		if n >= w.cfg.InsertStart+w.cfg.InsertCount {
			return OpInsert, true, nil
		}
		k.key = w.keys.appendKey(k.key[:0], n)
		return OpInsert, false, db.Put(ctx, k.key, w.values.next(k.r))
	}
	op = w.ops.next(k.r)
	switch op {
	case OpRead:
		k.key = w.keys.appendKey(k.key[:0], k.nextKeynum())
		err = db.Read(ctx, k.key)
	case OpUpdate:
		k.key = w.keys.appendKey(k.key[:0], k.nextKeynum())
		err = db.Put(ctx, k.key, w.values.next(k.r))
	case OpInsert:
		n := w.inserts.Next()
		defer w.inserts.Ack(n)
		k.key = w.keys.appendKey(k.key[:0], n)
		err = db.Put(ctx, k.key, w.values.next(k.r))
	case OpScan:
		k.key = w.keys.appendKey(k.key[:0], k.nextKeynum())
		_, err = db.Scan(ctx, k.key, int(w.scanLen.Next(k.r)))
	case OpReadModifyWrite:
		k.key = w.keys.appendKey(k.key[:0], k.nextKeynum())
		err = db.Read(ctx, k.key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return op, false, err
		}
		if werr := db.Put(ctx, k.key, w.values.next(k.r)); werr != nil {
			err = werr
		}
	}
	return op, false, err
}

// nextKeynum picks the record of a read, update or scan, never one whose
// insert has not been acknowledged yet.
func (k *Worker) nextKeynum() int64 {
	last := k.w.inserts.Last()
	for range 1000 {
		if n := k.w.chooser.Next(k.r); n <= last {
			return n
		}
	}
	return k.w.chooser.Next(k.r) % (last + 1)
}

// opChooser picks operation types with fixed relative weights (YCSB's
// DiscreteGenerator).
type opChooser struct {
	ops   []Op
	cum   []float64
	total float64
}

func newOpChooser(weights map[Op]float64) opChooser {
	var c opChooser
	for op := range numOps {
		if wt := weights[op]; wt > 0 {
			c.total += wt
			c.ops = append(c.ops, op)
			c.cum = append(c.cum, c.total)
		}
	}
	return c
}

func (c opChooser) next(r *rand.Rand) Op {
	x := r.Float64() * c.total
	for i, cum := range c.cum {
		if x < cum {
			return c.ops[i]
		}
	}
	return c.ops[len(c.ops)-1]
}
