package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Properties are YCSB-style workload settings: string keys and values, read
// from properties files and -p key=value arguments. Later settings replace
// earlier ones.
type Properties map[string]string

// ParseProperties reads properties in YCSB (Java properties) syntax into p:
// one key=value (or key:value) per line, blank lines and lines starting with
// '#' or '!' ignored, whitespace around keys and values trimmed, a trailing
// backslash continuing the value on the next line. name is used in errors.
func ParseProperties(r io.Reader, name string, p Properties) error {
	sc := bufio.NewScanner(r)
	lineNo := 0
	var pending string // a continued line
	for sc.Scan() {
		lineNo++
		line := pending + strings.TrimSpace(sc.Text())
		pending = ""
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, err := splitProperty(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		p[k] = v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if pending != "" {
		k, v, err := splitProperty(pending)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		p[k] = v
	}
	return nil
}

// LoadPropertiesFile reads a properties file into p.
func LoadPropertiesFile(path string, p Properties) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ParseProperties(f, path, p)
}

// Set parses one "key=value" argument (as given to -p) into p.
func (p Properties) Set(arg string) error {
	k, v, err := splitProperty(strings.TrimSpace(arg))
	if err != nil {
		return fmt.Errorf("property %q: %w", arg, err)
	}
	p[k] = v
	return nil
}

func splitProperty(line string) (key, value string, err error) {
	i := strings.IndexAny(line, "=:")
	if i < 0 {
		return "", "", fmt.Errorf("want key=value, got %q", line)
	}
	key, value = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
	if key == "" {
		return "", "", fmt.Errorf("empty key in %q", line)
	}
	return key, value, nil
}

// String returns the value of key, or def when it is not set.
func (p Properties) String(key, def string) string {
	if v, ok := p[key]; ok {
		return v
	}
	return def
}

// Int returns the integer value of key, or def when it is not set.
func (p Properties) Int(key string, def int64) (int64, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("property %s=%q: want an integer", key, v)
	}
	return n, nil
}

// Float returns the floating-point value of key, or def when it is not set.
func (p Properties) Float(key string, def float64) (float64, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("property %s=%q: want a number", key, v)
	}
	return f, nil
}

// Duration returns the duration value of key, or def when it is not set. A
// plain number is seconds (YCSB's maxexecutiontime is in seconds); a Go
// duration such as "1m30s" or "500ms" is also accepted.
func (p Properties) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("property %s=%q: want seconds or a duration like 30s", key, v)
	}
	return d, nil
}
