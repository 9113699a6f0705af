package audit

import "testing"

// BenchmarkTreeAppend appends leaves the size of a typical entry.
func BenchmarkTreeAppend(b *testing.B) {
	leaf := mustLeaf(b, testEntry(0))
	var tree Tree
	b.SetBytes(int64(len(leaf)))
	for b.Loop() {
		if err := tree.Append(leaf); err != nil {
			b.Fatal(err)
		}
	}
}
