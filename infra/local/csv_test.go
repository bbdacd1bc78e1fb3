package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CSV upload as a user does it with curl alone against `make run`: download the
// template, request an upload, POST the file to the presigned URL, poll the status to
// completed, and find the profiles through the Profile API.
func TestCSVUploadWithCurl(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed; CI needs it")
		}
		t.Skip("SKIP: curl is not installed")
	}
	s := start(t, buildStack(t), t.TempDir(), anyPort)
	if !strings.HasPrefix(s.s3, "http://127.0.0.1:") {
		t.Fatalf("banner names no S3 endpoint:\n%s", s.stdout)
	}
	dir := t.TempDir()
	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "--fail-with-body"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	decode := func(js string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("not JSON: %q", js)
		}
		return m
	}

	const sid = "AC0123456789abcdef0123456789abcdef"
	inv := decode(curl("-X", "POST", s.base+"/v1/beta/accounts", "-H", "Authorization: Bearer "+s.operator, "-d", `{"account_sid":"`+sid+`"}`))
	ws := decode(curl("-X", "POST", s.base+"/v1/workspaces", "-H", "Authorization: Bearer "+inv["invite_token"].(string),
		"-d", `{"name":"Acme Support","account_sid":"`+sid+`"}`))
	wsID, tok := ws["id"].(string), ws["token"].(string)
	auth := "Authorization: Bearer " + tok

	// 1. The template: the space's identifier columns and a sample trait.
	tmpl := filepath.Join(dir, "template.csv")
	curl("-o", tmpl, "-H", auth, s.base+"/v1/workspaces/"+wsID+"/csv/template")
	b, _ := os.ReadFile(tmpl)
	header, _, _ := strings.Cut(string(b), "\n")
	for _, col := range []string{"user_id", "email", "anonymous_id"} {
		if !strings.Contains(header, col) {
			t.Errorf("template header %q lacks %s", header, col)
		}
	}

	// 2. The file: the template's header, filled in.
	cols := strings.Split(strings.TrimRight(header, "\r"), ",")
	var rows strings.Builder
	rows.WriteString(strings.Join(cols, ",") + "\n")
	for i := range 25 {
		var cells []string
		for _, c := range cols {
			switch c {
			case "user_id":
				cells = append(cells, fmt.Sprintf("cust-%d", i))
			case "email":
				cells = append(cells, fmt.Sprintf("cust-%d@example.com", i))
			case "first_name":
				cells = append(cells, "Ada")
			default:
				cells = append(cells, "")
			}
		}
		rows.WriteString(strings.Join(cells, ",") + "\n")
	}
	file := filepath.Join(dir, "customers.csv")
	os.WriteFile(file, []byte(rows.String()), 0o600)

	// 3. Request the upload, then POST the file to the presigned URL as a browser would.
	up := decode(curl("-X", "POST", s.base+"/v1/workspaces/"+wsID+"/csv/uploads", "-H", auth,
		"-d", fmt.Sprintf(`{"filename":"customers.csv","size":%d}`, rows.Len())))
	post := up["upload"].(map[string]any)
	if !strings.HasPrefix(post["url"].(string), s.s3) || post["method"] != "POST" {
		t.Fatalf("presigned POST %v does not point at %s", post, s.s3)
	}
	// One upload at a time: a second request while this one is pending is refused.
	if e := s.call(t, "POST", "/v1/workspaces/"+wsID+"/csv/uploads", tok, `{"filename":"more.csv","size":10}`, 409); e["error"].(map[string]any)["code"] != "upload_in_progress" {
		t.Errorf("second upload: %v", e)
	}
	args := []string{"-X", "POST", post["url"].(string)}
	for k, v := range post["fields"].(map[string]any) {
		args = append(args, "-F", k+"="+v.(string))
	}
	curl(append(args, "-F", "file=@"+file)...)

	// 4. Poll to completed.
	id := up["id"].(string)
	var st map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st = decode(curl("-H", auth, s.base+"/v1/workspaces/"+wsID+"/csv/uploads/"+id))
		if st["status"] == "completed" || st["status"] == "failed" || time.Now().After(deadline) {
			break
		}
	}
	if st["status"] != "completed" || st["rows_total"] != 25.0 || st["rows_done"] != 25.0 {
		t.Fatalf("upload status: %v", st)
	}
	if sum := st["summary"].(map[string]any); sum["profiles_created"] != 25.0 {
		t.Errorf("summary %v", sum)
	}

	// 5. The profiles, through the Profile API.
	space := ws["spaces"].([]any)[0].(map[string]any)["id"].(string)
	at := decode(curl("-X", "POST", s.base+"/v1/workspaces/"+wsID+"/spaces/"+space+"/access-tokens", "-H", auth))["token"].(string)
	traits := decode(curl("-u", at+":", s.base+"/v1/spaces/"+space+"/collections/users/profiles/email:cust-7@example.com/traits"))
	if tr := traits["traits"].(map[string]any); tr["first_name"] != "Ada" {
		t.Errorf("traits of cust-7: %v", traits)
	}
}
