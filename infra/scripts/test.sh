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

echo "== go test: the local stack's black-box suites again, on DynamoDB (moto_server)"
# Every stack these suites start keeps its data in a DynamoDB table of its own instead of
# bbolt, as make run does with UP_DYNAMODB_ENDPOINT (see shared/localstack/localstacktest).
if start_moto_local; then
	go test -race -count=1 -timeout 30m ./infra/local/ ./infra/sdktest/ ./infra/consoletest/ ./shared/localstack/...
else
	echo "SKIP: the local stack's suites on DynamoDB (moto_server is not installed)"
fi

# Every fuzz target's seed corpus ran above as a test. Random mutation is `make fuzz`
# (infra/scripts/fuzz.sh): it finds new inputs, so it would make this run's result depend on luck.
