package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

const usage = "usage: benchtool ports N | hist NAME [LABEL=VALUE...] BEFORE AFTER | delta NAME [LABEL=VALUE...] BEFORE AFTER | changes PREFIX BEFORE AFTER"

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "ports":
		if len(rest) != 1 {
			return errors.New(usage)
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("ports: want a count from 1 to 100, got %q", rest[0])
		}
		ports, err := freePorts(n)
		if err != nil {
			return err
		}
		for _, p := range ports {
			fmt.Println(p)
		}
		return nil
	case "hist", "delta":
		if len(rest) < 3 {
			return errors.New(usage)
		}
		name, labels, files := rest[0], rest[1:len(rest)-2], rest[len(rest)-2:]
		match, err := parseMatchers(labels)
		if err != nil {
			return err
		}
		before, after, err := readBoth(files)
		if err != nil {
			return err
		}
		if cmd == "delta" {
			fmt.Println(formatNumber(sum(after, name, match) - sum(before, name, match)))
			return nil
		}
		return printHist(before, after, name, match)
	case "changes":
		if len(rest) != 3 {
			return errors.New(usage)
		}
		before, after, err := readBoth(rest[1:])
		if err != nil {
			return err
		}
		old := map[string]float64{}
		for _, s := range before {
			old[s.key] = s.value
		}
		for _, s := range after {
			if !strings.HasPrefix(s.name, rest[0]) || strings.HasSuffix(s.name, "_bucket") {
				continue
			}
			if d := s.value - old[s.key]; d != 0 {
				fmt.Printf("%s %s\n", s.key, formatNumber(d))
			}
		}
		return nil
	}
	return errors.New(usage)
}

// freePorts finds n ports free on 127.0.0.1 for UDP and TCP alike, holding
// each until all are found so that none is returned twice.
func freePorts(n int) ([]int, error) {
	var (
		ports   []int
		holders []interface{ Close() error }
	)
	defer func() {
		for _, h := range holders {
			h.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 50*n {
			return nil, errors.New("ports: no free loopback ports found")
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			u.Close()
			continue
		}
		holders = append(holders, u, t)
		ports = append(ports, port)
	}
	return ports, nil
}

// sample is one series of a /metrics scrape.
type sample struct {
	name   string
	labels map[string]string
	key    string // the line as written, without its value
	value  float64
}

func readBoth(files []string) (before, after []sample, err error) {
	if before, err = readScrape(files[0]); err != nil {
		return nil, nil, err
	}
	if after, err = readScrape(files[1]); err != nil {
		return nil, nil, err
	}
	return before, after, nil
}

// readScrape parses the Prometheus text format (what /metrics serves).
func readScrape(path string) ([]sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		s, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLine(text string) (sample, error) {
	s := sample{labels: map[string]string{}}
	rest := text
	if i := strings.IndexAny(text, "{ "); i < 0 {
		return s, fmt.Errorf("no value in %q", text)
	} else {
		s.name, rest = text[:i], text[i:]
	}
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return s, fmt.Errorf("bad labels in %q", text)
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for i := 0; i < len(rest); i++ {
				switch c := rest[i]; {
				case c == '\\' && i+1 < len(rest):
					i++
					switch rest[i] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[i])
					}
				case c == '"':
					rest, closed = rest[i+1:], true
				default:
					val.WriteByte(c)
				}
				if closed {
					break
				}
			}
			if !closed {
				return s, fmt.Errorf("unterminated label value in %q", text)
			}
			s.labels[name] = val.String()
		}
	}
	s.key = strings.TrimSpace(text[:len(text)-len(rest)])
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value in %q", text)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("bad value in %q", text)
	}
	s.value = v
	return s, nil
}

type matcher struct{ name, value string }

func parseMatchers(args []string) ([]matcher, error) {
	var out []matcher
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("want LABEL=VALUE, got %q", a)
		}
		out = append(out, matcher{k, v})
	}
	return out, nil
}

func (s sample) matches(name string, m []matcher) bool {
	if s.name != name {
		return false
	}
	for _, x := range m {
		if s.labels[x.name] != x.value {
			return false
		}
	}
	return true
}

func sum(samples []sample, name string, m []matcher) float64 {
	t := 0.0
	for _, s := range samples {
		if s.matches(name, m) {
			t += s.value
		}
	}
	return t
}

// buckets adds up the matching series' cumulative buckets by upper bound.
func buckets(samples []sample, name string, m []matcher) (map[float64]float64, error) {
	out := map[float64]float64{}
	for _, s := range samples {
		if !s.matches(name+"_bucket", m) {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad le %q", s.key, s.labels["le"])
		}
		out[le] += s.value
	}
	return out, nil
}

func printHist(before, after []sample, name string, m []matcher) error {
	b, err := buckets(before, name, m)
	if err != nil {
		return err
	}
	a, err := buckets(after, name, m)
	if err != nil {
		return err
	}
	if len(a) == 0 {
		return fmt.Errorf("no series %s_bucket matching %v in the second scrape", name, m)
	}
	type bucket struct{ le, count float64 }
	var diff []bucket
	for le, n := range a {
		diff = append(diff, bucket{le, n - b[le]})
	}
	slices.SortFunc(diff, func(x, y bucket) int {
		switch {
		case x.le < y.le:
			return -1
		case x.le > y.le:
			return 1
		}
		return 0
	})
	total := diff[len(diff)-1].count
	sumSecs := sum(after, name+"_sum", m) - sum(before, name+"_sum", m)
	fmt.Printf("count=%s\n", formatNumber(total))
	if total <= 0 {
		fmt.Print("mean_ms=0\np50_ms=0\np90_ms=0\np99_ms=0\n")
		return nil
	}
	fmt.Printf("mean_ms=%.2f\n", 1000*sumSecs/total)
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}} {
		rank := q.q * total
		lower, below, v := 0.0, 0.0, math.NaN()
		for _, bk := range diff {
			if bk.count >= rank {
				if math.IsInf(bk.le, 1) {
					v = lower // beyond the last bound: report it, as Prometheus does
				} else {
					v = lower + (bk.le-lower)*(rank-below)/(bk.count-below)
				}
				break
			}
			lower, below = bk.le, bk.count
		}
		fmt.Printf("%s_ms=%.2f\n", q.name, 1000*v)
	}
	return nil
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
