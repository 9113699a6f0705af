package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// printJSON writes v, one of the json* views, indented.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes a header and rows aligned in columns. Cells holding user
// bytes go through cell first.
func (g *globals) table(header string, rows [][]string) error {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// cell returns a key or value for a table: as it is when it is valid UTF-8
// of printable characters (strconv.IsPrint: letters, marks, numbers,
// punctuation, symbols and the ASCII space) that does not begin with a
// double quote; otherwise Go-quoted, as in "a\tb" or "\x1b[2J", so that no
// byte can break the columns or reach the terminal as a control sequence,
// and a quoted cell is never taken for raw text.
func cell(b []byte) string {
	s := string(b)
	if utf8.ValidString(s) && !strings.HasPrefix(s, `"`) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}
