package lambdatest

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sam build builds every function as make build does: template.yaml names the Makefile
// (BuildMethod: makefile, CodeUri: .) and the Makefile has each function's build-<LogicalId>
// target, which makes a stripped linux binary with the lambda.norpc tag.
func TestSamBuildUsesTheMakefile(t *testing.T) {
	t.Parallel()
	root := ModuleRoot(t)
	tpl, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Each function resource: its logical id and its text up to the next resource.
	starts := regexp.MustCompile(`(?m)^  ([A-Za-z0-9]+):\n    Type: AWS::Serverless::Function\n`).FindAllSubmatchIndex(tpl, -1)
	if len(starts) < 6 {
		t.Fatalf("found %d functions in template.yaml", len(starts))
	}
	next := regexp.MustCompile(`(?m)^  [A-Za-z0-9]+:\n`)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range starts {
		id := string(tpl[m[2]:m[3]])
		body := tpl[m[1]:]
		if n := next.FindIndex(body); n != nil {
			body = body[:n[0]]
		}
		if !bytes.Contains(body, []byte("BuildMethod: makefile")) || !bytes.Contains(body, []byte("CodeUri: .\n")) {
			t.Errorf("%s does not build with the Makefile (BuildMethod: makefile, CodeUri: .)", id)
		}
		if !regexp.MustCompile(`(?m)^build-` + id + `:`).Match(mk) {
			t.Errorf("the Makefile has no build-%s target for sam build", id)
		}
	}

	// One target, run as sam build runs it: a stripped static binary built with lambda.norpc.
	out := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build-TrackingFunction", "ARTIFACTS_DIR="+out, "GOARCH=amd64")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-TrackingFunction: %v\n%s", err, b)
	}
	f, err := elf.Open(filepath.Join(out, "bootstrap"))
	if err != nil {
		t.Fatalf("the bootstrap is not a linux binary: %v", err)
	}
	defer f.Close()
	for _, sec := range f.Sections {
		if strings.HasPrefix(sec.Name, ".debug_") || sec.Name == ".symtab" {
			t.Errorf("the bootstrap keeps %s: not stripped", sec.Name)
		}
	}
	info, err := exec.Command("go", "version", "-m", filepath.Join(out, "bootstrap")).Output()
	if err != nil || !bytes.Contains(info, []byte("-tags=lambda.norpc")) || !bytes.Contains(info, []byte("-trimpath=true")) {
		t.Errorf("the bootstrap was not built with -tags lambda.norpc -trimpath: %v\n%s", err, info)
	}
}

// The template holds for any stack name and lets UP_PUBLIC_URL be set: the uploads bucket's
// name (which S3 wants lowercase and at most 63 characters) comes from the stack's UUID, not
// its name, everywhere it is written; the functions get UP_PUBLIC_URL from a parameter.
func TestTemplateForAnyStackName(t *testing.T) {
	t.Parallel()
	tpl, err := os.ReadFile(filepath.Join(ModuleRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(tpl)
	if strings.Contains(s, "${AWS::StackName}-uploads") {
		t.Error("the uploads bucket is named after the stack: capitals or a long stack name break it")
	}
	if n := strings.Count(s, "up-uploads-${StackUUID}"); n < 5 {
		t.Errorf("the bucket's name from the stack UUID appears %d times; the bucket, both functions' env and policies need it", n)
	}
	if !regexp.MustCompile(`(?m)^        UP_PUBLIC_URL: !Ref PublicUrl$`).MatchString(s) || !strings.Contains(s, "\n  PublicUrl:\n") {
		t.Error("UP_PUBLIC_URL cannot be set on AWS: no PublicUrl parameter in the functions' environment")
	}
}

// Work that AWS runs asynchronously never fails silently or multiplies: csv-ingest,
// traits-backfill and sync-dispatcher send events that fail every retry to a dead-letter queue with an alarm,
// and the backfill runs one invocation at a time.
func TestTemplateAsyncFailuresAreSeen(t *testing.T) {
	t.Parallel()
	tpl, err := os.ReadFile(filepath.Join(ModuleRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	resource := func(id string) string {
		s := string(tpl)
		i := strings.Index(s, "\n  "+id+":\n")
		if i < 0 {
			t.Fatalf("no %s in template.yaml", id)
		}
		rest := s[i+len(id)+4:]
		if n := regexp.MustCompile(`(?m)^  [A-Za-z0-9]+:\n`).FindStringIndex(rest); n != nil {
			rest = rest[:n[0]]
		}
		return rest
	}
	for _, fn := range []string{"CsvIngestFunction", "TraitsBackfillFunction", "SyncDispatcherFunction"} {
		if !strings.Contains(resource(fn), "TargetArn: !GetAtt AsyncDeadLetterQueue.Arn") {
			t.Errorf("%s has no dead-letter queue", fn)
		}
	}
	for _, fn := range []string{"TraitsBackfillFunction", "SyncDispatcherFunction"} {
		if !strings.Contains(resource(fn), "ReservedConcurrentExecutions: 1") {
			t.Errorf("%s can run overlapping invocations", fn)
		}
	}
	if a := resource("AsyncDeadLetterAlarm"); !strings.Contains(a, "AsyncDeadLetterQueue.QueueName") {
		t.Error("no alarm watches the dead-letter queue")
	}
}

// Sync tasks on SQS: a task still running is never handed to a second worker (visibility
// timeout at least 6 times the worker's timeout, which stays within the sync lease of 5
// minutes), one failed task comes back alone (partial batch responses), and a task that
// keeps failing lands in a dead-letter queue with an alarm.
func TestTemplateSyncQueue(t *testing.T) {
	t.Parallel()
	tpl, err := os.ReadFile(filepath.Join(ModuleRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	resource := func(id string) string {
		s := string(tpl)
		i := strings.Index(s, "\n  "+id+":\n")
		if i < 0 {
			t.Fatalf("no %s in template.yaml", id)
		}
		rest := s[i+len(id)+4:]
		if n := regexp.MustCompile(`(?m)^  [A-Za-z0-9]+:\n`).FindStringIndex(rest); n != nil {
			rest = rest[:n[0]]
		}
		return rest
	}
	number := func(text, key string) int {
		m := regexp.MustCompile(`(?m)^\s+` + key + `: (\d+)`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in %q", key, text)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	worker, queue := resource("SyncWorkerFunction"), resource("SyncQueue")
	timeout, visibility := number(worker, "Timeout"), number(queue, "VisibilityTimeout")
	if timeout > 300 {
		t.Errorf("the worker's timeout %d s is longer than a sync's lease (300 s)", timeout)
	}
	if visibility < 6*timeout {
		t.Errorf("SyncQueue's visibility timeout %d s is under 6 times the worker's timeout %d s", visibility, timeout)
	}
	if !strings.Contains(worker, "Queue: !GetAtt SyncQueue.Arn") || !strings.Contains(worker, "- ReportBatchItemFailures") {
		t.Error("the worker does not consume SyncQueue with partial batch responses")
	}
	if !strings.Contains(queue, "deadLetterTargetArn: !GetAtt SyncDeadLetterQueue.Arn") || number(queue, "maxReceiveCount") != 5 {
		t.Error("SyncQueue has no dead-letter queue after 5 receives")
	}
	if a := resource("SyncDeadLetterAlarm"); !strings.Contains(a, "SyncDeadLetterQueue.QueueName") ||
		!strings.Contains(a, "ApproximateNumberOfMessagesVisible") || !strings.Contains(a, "ComparisonOperator: GreaterThanThreshold") {
		t.Error("no alarm watches SyncDeadLetterQueue")
	}
	for _, fn := range []string{"SyncDispatcherFunction", "SyncWorkerFunction"} {
		if !regexp.MustCompile(`(?m)^          UP_SYNC_QUEUE_URL: !Ref SyncQueue$`).MatchString(resource(fn)) {
			t.Errorf("%s is not given SyncQueue's URL", fn)
		}
	}
}

// Destination deliveries on SQS: a batch still being attempted is never handed out again
// (visibility timeout at least 6 times the function's timeout), jobs to retry come back alone
// (partial batch responses), batches are large (BatchSize 100 needs a batching window), the
// queue keeps a job longer than the 4 hours it is retried for, and a body that is not a job
// lands in a dead-letter queue with an alarm. The tracking function (the outbox) and the
// destinations function (forwards) may send to it; only the latter opens sealed settings.
func TestTemplateDestinationsQueue(t *testing.T) {
	t.Parallel()
	tpl, err := os.ReadFile(filepath.Join(ModuleRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	resource := func(id string) string {
		s := string(tpl)
		i := strings.Index(s, "\n  "+id+":\n")
		if i < 0 {
			t.Fatalf("no %s in template.yaml", id)
		}
		rest := s[i+len(id)+4:]
		if n := regexp.MustCompile(`(?m)^  [A-Za-z0-9]+:\n`).FindStringIndex(rest); n != nil {
			rest = rest[:n[0]]
		}
		return rest
	}
	number := func(text, key string) int {
		m := regexp.MustCompile(`(?m)^\s+` + key + `: (\d+)`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in %q", key, text)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	fn, queue := resource("DestinationsFunction"), resource("DestinationsQueue")
	if timeout, visibility := number(fn, "Timeout"), number(queue, "VisibilityTimeout"); visibility < 6*timeout {
		t.Errorf("DestinationsQueue's visibility timeout %d s is under 6 times the function's timeout %d s", visibility, timeout)
	}
	if number(queue, "MessageRetentionPeriod") < 4*3600 {
		t.Error("DestinationsQueue keeps messages for less than the 4 hours a job is retried")
	}
	if !strings.Contains(fn, "Queue: !GetAtt DestinationsQueue.Arn") || !strings.Contains(fn, "- ReportBatchItemFailures") ||
		number(fn, "BatchSize") != 100 || number(fn, "MaximumBatchingWindowInSeconds") < 1 {
		t.Error("the function does not consume DestinationsQueue in batches of 100 with partial batch responses")
	}
	if !strings.Contains(queue, "deadLetterTargetArn: !GetAtt DestinationsDeadLetterQueue.Arn") || number(queue, "maxReceiveCount") != 100 {
		t.Error("DestinationsQueue has no dead-letter queue after 100 receives")
	}
	if a := resource("DestinationsDeadLetterAlarm"); !strings.Contains(a, "DestinationsDeadLetterQueue.QueueName") ||
		!strings.Contains(a, "ApproximateNumberOfMessagesVisible") || !strings.Contains(a, "ComparisonOperator: GreaterThanThreshold") {
		t.Error("no alarm watches DestinationsDeadLetterQueue")
	}
	for _, id := range []string{"DestinationsFunction", "TrackingFunction"} {
		r := resource(id)
		if !regexp.MustCompile(`(?m)^          UP_DESTINATIONS_QUEUE_URL: !Ref DestinationsQueue$`).MatchString(r) {
			t.Errorf("%s is not given DestinationsQueue's URL", id)
		}
		if !regexp.MustCompile(`- sqs:SendMessage\n(\s+- sqs:\w+\n)*\s+Resource: !GetAtt DestinationsQueue.Arn`).MatchString(r) {
			t.Errorf("%s may not send to DestinationsQueue", id)
		}
	}
	if !regexp.MustCompile(`- sqs:ChangeMessageVisibility\n(\s+- sqs:\w+\n)*\s+Resource: !GetAtt DestinationsQueue.Arn`).MatchString(fn) {
		t.Error("the function may not delay a retry (sqs:ChangeMessageVisibility on DestinationsQueue)")
	}
	if !regexp.MustCompile(`(?m)^          UP_KMS_KEY_ID: !Ref WorkspaceSecretsKey$`).MatchString(fn) ||
		!strings.Contains(fn, "- kms:Decrypt\n              Resource: !GetAtt WorkspaceSecretsKey.Arn\n              Condition:\n                ForAllValues:StringEquals:\n                  kms:EncryptionContextKeys: [workspace_id]") {
		t.Error("the function cannot open destinations' settings, sealed with the workspace id as encryption context")
	}
}
