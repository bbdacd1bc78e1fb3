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
