package bench

import (
	"math/rand/v2"
	"strconv"
)

// keyFormat turns record numbers into keys: prefix + decimal digits of the
// record number (ordered) or of its FNV hash (hashed), as YCSB does. With a
// fixed length the digits are zero-padded on the left or, for hashed keys,
// cut to their last digits; ordered keys that do not fit keep all digits.
type keyFormat struct {
	prefix string
	length int // 0: natural length
	hashed bool
}

// appendKey appends the key of record keynum to dst.
func (k keyFormat) appendKey(dst []byte, keynum int64) []byte {
	n := uint64(keynum)
	if k.hashed {
		n = fnvHash64(n)
	}
	dst = append(dst, k.prefix...)
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], n, 10)
	if k.length == 0 {
		return append(dst, digits...)
	}
	width := k.length - len(k.prefix)
	if len(digits) > width && k.hashed {
		digits = digits[len(digits)-width:]
	}
	for i := len(digits); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// valuePool hands out values: slices of one buffer of random printable bytes,
// at random offsets. Values are never written to, so drivers may keep them
// while a call runs.
type valuePool struct {
	buf            []byte
	length         int
	uniformLengths bool
}

const valuePoolBytes = 1 << 20

func newValuePool(length int, uniform bool, seed uint64) *valuePool {
	r := rand.New(rand.NewPCG(seed, 0x76616c756573))
	buf := make([]byte, valuePoolBytes+length)
	for i := range buf {
		buf[i] = byte(' ' + r.IntN('~'-' '+1))
	}
	return &valuePool{buf: buf, length: length, uniformLengths: uniform}
}

// next returns a value.
func (p *valuePool) next(r *rand.Rand) []byte {
	n := p.length
	if p.uniformLengths {
		n = 1 + r.IntN(p.length)
	}
	off := r.IntN(valuePoolBytes)
	return p.buf[off : off+n : off+n]
}
