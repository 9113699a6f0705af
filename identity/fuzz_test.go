package identity

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// FuzzParseExtension feeds arbitrary bytes to the extension parser: it
// never panics; what it accepts is exactly what Extension writes for the
// identity it read (the encoding is canonical); what it refuses wraps one
// of the package's sentinels, in a message of bounded length.
func FuzzParseExtension(f *testing.F) {
	for _, seed := range [][]byte{
		node(ieLoc), node("country=NO"), user("reader,writer", "IE"), user("admin,auditor,reader,writer", "DE"),
		user("writer,reader", "IE"), node("country=IE,zone=Zone A"),
		der(intEl(2), utf8El("node"), ctxEl(0, ieLoc)),
		der(intEl(1), printableEl("node"), ctxEl(0, ieLoc)),
		der(intEl(1), utf8El("user"), ctxEl(0, ieLoc), ctxEl(1, "reader"), ctxEl(2, "IE")),
		append(node(ieLoc), 0), {}, {0x30, 0x00}, []byte("country=IE"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseExtension(data)
		if err != nil {
			if !slices.ContainsFunc(allSentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		id := Identity{TrustDomain: "fuzz", Kind: c.kind, Name: "n", Locality: c.locality, Roles: c.roles, Country: c.country}
		ext, err := Extension(id)
		if err != nil {
			t.Fatalf("accepted %x as %+v, which Extension refuses: %v", data, c, err)
		}
		if !bytes.Equal(ext.Value, data) {
			t.Fatalf("accepted %x, which Extension writes as %x", data, ext.Value)
		}
	})
}
