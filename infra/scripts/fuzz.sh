#!/usr/bin/env bash
# make fuzz: random-mutation fuzzing of every parser that faces requests (make test runs only
# their seed corpora). FUZZ_SCALE multiplies each budget (FUZZ_SCALE=10 for a long run).
set -euo pipefail
cd "$(dirname "$0")/../.."
scale=${FUZZ_SCALE:-1}

# Budgets are counts, not durations: a duration-limited run
# of Go 1.26 can fail at its deadline with a bare "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in 1.27). Minimizing a new interesting input is capped by count too,
# so that a short run fuzzes rather than minimizes. Each run takes a few seconds here.
echo "== fuzz"
fuzz() {
	local out start=$SECONDS
	local n=$(( ${3%x} * scale ))x
	if ! out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$n" -fuzzminimizetime 200x "$1" 2>&1); then
		echo "$out"; return 1
	fi
	echo "$1 $2: $n in $((SECONDS - start))s"
}
fuzz ./shared/tracking/ FuzzParse 40000x
fuzz ./shared/tracking/ FuzzDecompress 15000x
fuzz ./shared/tracking/ FuzzDecoderMatchesReference 40000x
fuzz ./shared/tracking/ FuzzDebuggerItemJSON 20000x
fuzz ./shared/tracking/ FuzzDebuggerItemPacking 20000x
fuzz ./shared/jsonappend/ FuzzRaw 40000x
fuzz ./shared/jsonappend/ FuzzString 40000x
fuzz ./shared/profile/ FuzzEventJSONMatchesMarshal 20000x
fuzz ./shared/profile/ FuzzProfileJSONMatchesMarshal 20000x
fuzz ./shared/profile/ FuzzClaimOwner 40000x
fuzz ./shared/httpapi/ FuzzDecode 15000x
fuzz ./shared/httpapi/ FuzzAcceptsGzip 20000x
fuzz ./shared/identity/ FuzzExtract 30000x
fuzz ./shared/csvfile/ FuzzValidate 25000x
fuzz ./shared/flex/ FuzzEventFromTaskRouter 30000x
fuzz ./shared/flex/ FuzzNormalizePhone 40000x
fuzz ./shared/traits/ FuzzDefinition 100000x
fuzz ./shared/secrets/localkey/ FuzzOpen 50000x
fuzz ./shared/store/bolt/ FuzzLogRecord 40000x
fuzz ./shared/warehouse/sqlgen/ FuzzLiteral 40000x
fuzz ./shared/warehouse/bigquery/ FuzzPosition 15000x
fuzz ./shared/warehouse/bigquery/ FuzzErrorLocation 15000x
fuzz ./shared/warehouse/sqsqueue/ FuzzDecode 30000x
fuzz ./shared/delivery/sqsqueue/ FuzzDecode 30000x
fuzz ./shared/sqsbody/ FuzzDecode 30000x
fuzz ./shared/warehouse/snowflake/ FuzzPosition 20000x
fuzz ./shared/warehouse/snowflake/ FuzzNumber 30000x
fuzz ./shared/salesforce/ FuzzParseDatetime 40000x
fuzz ./shared/salesforce/ FuzzIncrementalQuery 30000x
fuzz ./shared/salesforce/rest/ FuzzDecodeAPIError 30000x
fuzz ./shared/salesforce/rest/ FuzzDecodePage 20000x
fuzz ./shared/salesforce/sfake/ FuzzParseSOQL 30000x
# Each input is upserted into a real PostgreSQL: a smaller budget.
fuzz ./shared/warehouse/sqlgen/ FuzzSalesforceLiteral 2000x
