// Command loadgen sends BenchmarkTrackingBatch's load (package trackingload: 16 senders,
// /v1/batch of 100, 65 % returning tracks, 5 % identifies, 25 % new visitors, 5 % merges,
// after 2,000 warm-up identifies) to any server that accepts Segment's /v1/batch with a
// write key as HTTP Basic user: this project's local stack or RudderStack's gateway, so that the
// two are measured by one generator (BENCHMARKS.md, "Side by side with RudderStack's gateway").
// It prints events/s, request latency percentiles and, given the servers' pids, their CPU per
// event read from /proc.
//
//	go run ./infra/loadgen -url http://127.0.0.1:8080 -key <write key> -n 1000 -server <pid> [-pg <postmaster pid>]
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/unifiedprofiles/up/infra/trackingload"
)

// cpuTicks returns utime+stime (+cutime+cstime) of pid, in clock ticks (100/s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var t int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime (fields 14-17)
		v, _ := strconv.ParseInt(f[i], 10, 64)
		t += v
	}
	return t
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	p, _ := strconv.Atoi(f[1])
	return p
}

// treeTicks sums the CPU ticks of pid and all its descendants (per process, by pid).
func treeTicks(root int) map[int]int64 {
	out := map[int]int64{}
	if root <= 0 {
		return out
	}
	ents, _ := filepath.Glob("/proc/[0-9]*")
	parent := map[int]int{}
	for _, e := range ents {
		p, _ := strconv.Atoi(filepath.Base(e))
		parent[p] = ppid(p)
	}
	for p := range parent {
		for q := p; q > 1; q = parent[q] {
			if q == root {
				out[p] = cpuTicks(p)
				break
			}
		}
	}
	out[root] = cpuTicks(root)
	return out
}

func diffTicks(before, after map[int]int64) int64 {
	var d int64
	for p, a := range after {
		d += a - before[p] // a process born during the run counts from 0
	}
	return d
}

func sysTicks() (busy, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:]
	for i, x := range f {
		v, _ := strconv.ParseInt(x, 10, 64)
		if i < 8 {
			total += v
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
	}
	return
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "base URL")
	key := flag.String("key", "", "write key")
	n := flag.Int("n", 1000, "batches after warm-up")
	conc := flag.Int("c", 16, "concurrent senders")
	server := flag.Int("server", 0, "server pid (CPU of it and its children)")
	pg := flag.Int("pg", 0, "postmaster pid (CPU of it and its backends), 0 for none")
	label := flag.String("label", "", "label for the result line")
	flag.Parse()

	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(*key+":"))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var bad atomic.Int64
	post := func(body []byte) bool {
		req, _ := http.NewRequest("POST", *url+"/v1/batch", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			if bad.Add(1) <= 5 {
				fmt.Fprintln(os.Stderr, "error:", err)
			}
			return false
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || bytes.Contains(out, []byte(`"rejected"`)) {
			if bad.Add(1) <= 5 {
				fmt.Fprintf(os.Stderr, "batch: %d %s\n", res.StatusCode, out)
			}
			return false
		}
		return true
	}
	var load trackingload.Load
	for _, body := range load.Warmup() {
		if !post(body) {
			fmt.Fprintln(os.Stderr, "warm-up failed")
			os.Exit(1)
		}
	}
	// The batches, made before timing (the same load on every run, for both servers).
	bodies := load.Batches(*n, *conc)
	var bodyBytes int
	for _, b := range bodies {
		bodyBytes += len(b)
	}
	time.Sleep(2 * time.Second) // let the warm-up settle

	srvBefore, pgBefore := treeTicks(*server), treeTicks(*pg)
	busy0, total0 := sysTicks()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	lat := make([]time.Duration, *n)
	okb := make([]bool, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= *n {
					return
				}
				t := time.Now()
				okb[k] = post(bodies[k])
				lat[k] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	busy1, total1 := sysTicks()
	srvCPU := diffTicks(srvBefore, treeTicks(*server))
	pgCPU := diffTicks(pgBefore, treeTicks(*pg))

	accepted := 0
	for _, o := range okb {
		if o {
			accepted++
		}
	}
	events := accepted * trackingload.BatchSize
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	pct := func(p float64) float64 {
		return float64(sorted[int(p*float64(len(sorted)-1))].Microseconds()) / 1000
	}
	tickUS := 10000.0 // 1 tick = 10 ms
	genCPU := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	fmt.Printf("%s batches=%d ok=%d bad=%d events=%d wall=%.2fs events/s=%.0f p50=%.2fms p95=%.2fms p99=%.2fms max=%.2fms "+
		"server_cpu=%.2fs (%.1f µs/event) pg_cpu=%.2fs (%.1f µs/event) server+pg=%.1f µs/event loadgen_cpu=%.2fs machine_busy=%.0f%% avg_body=%dB\n",
		*label, *n, accepted, bad.Load(), events, wall.Seconds(), float64(events)/wall.Seconds(), pct(0.50), pct(0.95), pct(0.99), pct(1),
		float64(srvCPU)/100, float64(srvCPU)*tickUS/float64(max(events, 1)),
		float64(pgCPU)/100, float64(pgCPU)*tickUS/float64(max(events, 1)),
		float64(srvCPU+pgCPU)*tickUS/float64(max(events, 1)),
		genCPU.Seconds(), 100*float64(busy1-busy0)/float64(max(total1-total0, 1)), bodyBytes / *n)
	if bad.Load() > 0 {
		os.Exit(2)
	}
}
