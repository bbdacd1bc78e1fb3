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

echo "== go test"
# -race: the store and domain tests are concurrent by design.
go test -race -count=1 -timeout 30m ./...

# The parsers that face requests get a short fuzz run on every test run (every fuzz target's
# seeds already ran above as tests). Minimizing each new interesting input may take up to a
# minute by default, which would eat a short run whole: cap it.
echo "== fuzz"
fuzz() {
	local out
	if ! out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$3" -fuzzminimizetime 1s "$1" 2>&1); then
		echo "$out"; return 1
	fi
	echo "$1 $2: $(echo "$out" | grep -o 'execs: [0-9]*' | tail -1) in $3"
}
fuzz ./shared/tracking/ FuzzParse 10s
fuzz ./shared/tracking/ FuzzDecompress 5s
fuzz ./shared/httpapi/ FuzzDecode 5s
fuzz ./shared/identity/ FuzzExtract 5s
fuzz ./shared/csvfile/ FuzzValidate 10s
fuzz ./shared/flex/ FuzzEventFromTaskRouter 5s
fuzz ./shared/flex/ FuzzNormalizePhone 5s
fuzz ./shared/traits/ FuzzDefinition 5s
fuzz ./shared/secrets/localkey/ FuzzOpen 3s
