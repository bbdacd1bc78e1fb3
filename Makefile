# Unified Profiles. `make run` starts the local stack; `make test` runs every test, starting
# what the tests need (moto_server) and installing pinned tools into ./bin.
SHELL := /bin/bash
GO    ?= go

# Pinned tools, installed into ./bin by `make tools`.
RIE_MODULE := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d

FUNCTIONS := $(notdir $(wildcard functions/*))
# Deployment builds arm64 (template.yaml); `make build GOARCH=amd64` for the host.
GOARCH ?= arm64

.PHONY: run test fuzz build bench lint tools clean vendor-browser-sdk screenshots

run:
	$(GO) run ./infra/local

test: tools
	bash infra/scripts/test.sh

# Random-mutation fuzzing of the request parsers (make test runs their seed corpora only).
fuzz:
	bash infra/scripts/fuzz.sh

bin/aws-lambda-rie:
	GOBIN=$(CURDIR)/bin $(GO) install $(RIE_MODULE)

tools: bin/aws-lambda-rie

# One Lambda build, for make build and sam build alike: static, -tags lambda.norpc (no RPC
# server in the binary), -trimpath, stripped (-s -w keeps stack traces, drops the DWARF).
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

# Every function's bootstrap into bin/functions/<name>/ (what SAM deploys).
build:
	@set -e; for f in $(FUNCTIONS); do \
		$(LAMBDA_BUILD) -o bin/functions/$$f/bootstrap ./functions/$$f; \
		echo "bin/functions/$$f/bootstrap $$(stat -c %s bin/functions/$$f/bootstrap) bytes"; \
	done

# sam build (BuildMethod: makefile, CodeUri: .) runs build-<LogicalId> with ARTIFACTS_DIR set;
# infra/lambdatest checks that every function of template.yaml has its target here.
build-SetupFunction:          ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/setup
build-TrackingFunction:       ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/tracking
build-ProfilesFunction:       ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/profiles
build-CsvIngestFunction:      ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/csv-ingest
build-FlexWebhookFunction:    ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/flex-webhook
build-TraitsBackfillFunction: ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/traits-backfill
build-SyncDispatcherFunction: ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sync-dispatcher
build-SyncWorkerFunction:     ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sync-worker
build-DestinationsFunction:   ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/destinations
build-ConsoleFunction:        ; $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/console

bench: tools
	bash infra/scripts/bench.sh

# Copies the analytics-next build that infra/sdktest/node's lockfile pins into shared/browsersdk
# (the website snippet's bundle); then set browsersdk.Version. make test checks the copies.
AJS := infra/sdktest/node/node_modules/@segment/analytics-next
vendor-browser-sdk:
	npm ci --prefix infra/sdktest/node --no-audit --no-fund
	rm -f shared/browsersdk/dist/*.js shared/browsersdk/dist/*.js.gz
	cp $(AJS)/dist/umd/standalone.js $(AJS)/dist/umd/standalone.js.gz \
		$(AJS)/dist/umd/*.bundle.*.js $(AJS)/dist/umd/*.bundle.*.js.gz shared/browsersdk/dist/
	@echo "vendored @segment/analytics-next $$(node -p 'require("./$(AJS)/package.json").version'): set browsersdk.Version to it"

# The web console's screenshots in the README: infra/consoletest walks the guided setup in
# Chromium (the CSV, website, warehouse and mobile paths, and step 3's predictive traits) and saves a full-page PNG of each step.
SCREENSHOTS := infra/consoletest/screenshots
screenshots:
	rm -f $(SCREENSHOTS)/*.png
	UP_SCREENSHOTS=$(CURDIR)/$(SCREENSHOTS) $(GO) test -count=1 -run 'TestCSVPath|TestWebsitePath|TestWarehousePath|TestMobilePath|TestPredictionsStep3' ./infra/consoletest/
	@ls $(SCREENSHOTS)/*.png

lint:
	@test -z "$$(gofmt -l functions shared infra)" || { gofmt -l functions shared infra; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	cfn-lint template.yaml

clean:
	rm -rf bin .aws-sam
