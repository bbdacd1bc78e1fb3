package bench

import (
	"testing"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
)

// A cold start of the setup function under the Lambda Runtime Interface Emulator: start the
// execution environment, then the first invocation (process start, AWS config, one
// DynamoDB read and transaction on moto_server). Reports the stripped bootstrap's size too.
func BenchmarkSetupColdStart(b *testing.B) {
	endpoint, table := storetest.DynamoTable(b)
	lambdatest.FindRIE(b)
	boot := lambdatest.Build(b, "setup")
	env := map[string]string{
		"UP_TABLE_NAME":             table,
		"UP_OPERATOR_TOKEN_SHA256":  token.Hash("op_rie_test_operator_token"),
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_UPLOADS_BUCKET":         "up-uploads-bench", // presigning is offline: no S3 call
	}
	ev := lambdatest.LoadV2(b, "setup-accept-beta") // a read and a two-item transaction
	var l latencies
	for b.Loop() {
		b.StopTimer()
		em := lambdatest.Start(b, boot, env)
		b.StartTimer()
		res := em.InvokeV2(b, ev)
		b.StopTimer()
		if res.StatusCode != 201 && res.StatusCode != 200 {
			b.Fatalf("status %d: %s", res.StatusCode, res.Body)
		}
		l.add(em.FirstInvocation())
		em.Stop()
		b.StartTimer()
	}
	l.report(b)
	b.ReportMetric(float64(boot.Size)/1e6, "bootstrap-MB")
}
