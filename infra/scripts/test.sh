#!/usr/bin/env bash
# make test: formatting, vet, the SAM template, then every Go test with moto_server running.
set -euo pipefail
cd "$(dirname "$0")/../.."
source infra/scripts/moto.sh

echo "== gofmt and go vet"
unformatted=$(gofmt -l functions shared infra)
if [[ -n "$unformatted" ]]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "== cfn-lint template.yaml"
if command -v cfn-lint >/dev/null; then
	cfn-lint template.yaml
else
	missing cfn-lint
fi

start_moto
start_moto_journaled

echo "== npm ci infra/sdktest/node (the Node SDKs infra/sdktest runs)"
if command -v npm >/dev/null; then
	npm ci --prefix infra/sdktest/node --no-audit --no-fund
else
	missing npm
fi

echo "== chromium (infra/browsertest drives it)"
if command -v chromium >/dev/null; then
	chromium --version 2>/dev/null | head -1
elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	chromium --version 2>/dev/null | head -1
else
	missing "chromium (as root: apt-get update && apt-get install -y --no-install-recommends chromium)"
fi

echo "== go test"
# -race: the store and domain tests are concurrent by design.
go test -race -count=1 -timeout 30m ./...

# The parsers that face requests get a short fuzz run on every test run (every fuzz target's
# seeds already ran above as tests). Budgets are counts, not durations: a duration-limited run
# of Go 1.26 can fail at its deadline with a bare "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in 1.27). Minimizing a new interesting input is capped by count too,
# so that a short run fuzzes rather than minimizes. Each run takes a few seconds here.
echo "== fuzz"
fuzz() {
	local out start=$SECONDS
	if ! out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$3" -fuzzminimizetime 200x "$1" 2>&1); then
		echo "$out"; return 1
	fi
	echo "$1 $2: $3 in $((SECONDS - start))s"
}
fuzz ./shared/tracking/ FuzzParse 40000x
fuzz ./shared/tracking/ FuzzDecompress 15000x
fuzz ./shared/httpapi/ FuzzDecode 15000x
fuzz ./shared/httpapi/ FuzzAcceptsGzip 20000x
fuzz ./shared/identity/ FuzzExtract 30000x
fuzz ./shared/csvfile/ FuzzValidate 25000x
fuzz ./shared/flex/ FuzzEventFromTaskRouter 30000x
fuzz ./shared/flex/ FuzzNormalizePhone 40000x
fuzz ./shared/traits/ FuzzDefinition 100000x
fuzz ./shared/secrets/localkey/ FuzzOpen 50000x
