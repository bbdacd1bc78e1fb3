package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The CSV budget (ARCHITECTURE.md section 6): a 9,999-row × 8-column file, from the moment
// the upload is done (the presigned POST answered) until the status says completed, i.e. all
// profiles queryable; and the process's peak RSS meanwhile (the whole local stack and this
// client: an upper bound).
func BenchmarkCSVUpload(b *testing.B) {
	s := newStack(b)
	var peak float64
	var l latencies
	for i := 0; b.Loop(); i++ {
		ws, tok := s.workspace(b)
		file := csvFile(i, 9999)
		var up struct {
			ID     string `json:"id"`
			Upload struct {
				URL    string            `json:"url"`
				Fields map[string]string `json:"fields"`
			} `json:"upload"`
		}
		json.Unmarshal(s.do(b, "POST", "/v1/workspaces/"+ws+"/csv/uploads", tok, fmt.Sprintf(`{"filename":"people.csv","size":%d}`, len(file)), 201), &up)
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, v := range up.Upload.Fields {
			mw.WriteField(k, v)
		}
		fw, _ := mw.CreateFormFile("file", "people.csv")
		fw.Write(file)
		mw.Close()
		resetPeakRSS()
		res, err := s.client.Post(up.Upload.URL, mw.FormDataContentType(), &body)
		if err != nil || res.StatusCode != http.StatusNoContent {
			b.Fatalf("POST the file: %v %v", err, res)
		}
		res.Body.Close()
		start := time.Now()
		for {
			var st struct {
				Status   string `json:"status"`
				RowsDone int    `json:"rows_done"`
			}
			json.Unmarshal(s.do(b, "GET", "/v1/workspaces/"+ws+"/csv/uploads/"+up.ID, tok, "", 200), &st)
			if st.Status == "completed" && st.RowsDone == 9999 {
				break
			}
			if st.Status == "failed" {
				b.Fatalf("upload failed: %+v", st)
			}
			time.Sleep(2 * time.Millisecond)
		}
		l.add(time.Since(start))
		peak = max(peak, peakRSSMB())
	}
	l.report(b)
	b.ReportMetric(peak, "peak-RSS-MB")
}

// csvFile is n rows of 8 columns: user_id, email, anonymous_id and 5 traits.
func csvFile(run, n int) []byte {
	var b bytes.Buffer
	b.WriteString("user_id,email,anonymous_id,First Name,Last Name,plan,city,visits\n")
	for i := range n {
		fmt.Fprintf(&b, "r%d-u%d,r%d-u%d@example.com,r%d-a%d,Ada,Lovelace,pro,London,%d\n", run, i, run, i, run, i, i%50)
	}
	return b.Bytes()
}

// resetPeakRSS restarts the kernel's peak-RSS counter of this process (Linux).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB reads the peak RSS since the last reset (VmHWM), in MB; 0 when unknown.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// processCPU is the CPU time (user and system) this process has used so far: the stack and
// the load generator together, as the "µs of CPU per event" counts a whole machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
