#!/usr/bin/env bash
# make bench: the benchmarks of infra/bench, with moto_server for the Lambda cold start.
# Copy the figures into BENCHMARKS.md with the machine, the command and the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
source infra/scripts/moto.sh
start_moto
echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(go version)"
go test -run '^$' -bench "${BENCH:-.}" -skip 'ProfilesTraits|TrackingBatch|CSVUpload|Paced|RETL|DeliveryWebhook|PredictionRun' -benchtime "${BENCHTIME:-2s}" ./infra/bench/
# Paced at 1,000 requests/s: a fixed count, not a duration.
go test -run '^$' -bench 'ProfilesTraits|FlexAgentLookupPaced' -benchtime 5000x ./infra/bench/
# A 9,999-row CSV upload, three times (each takes seconds).
go test -run '^$' -bench CSVUpload -benchtime 3x ./infra/bench/
# Reverse ETL against a throwaway PostgreSQL: a 100,000-row first sync (twice), and 1,000 changed
# rows among 1,000,000 (after a first sync of the million, which takes a while).
go test -run '^$' -bench 'RETLFirstSync100k' -benchtime 2x ./infra/bench/
go test -run '^$' -bench 'RETLIncremental1kOf1M' -benchtime 3x -timeout 30m ./infra/bench/
go test -run '^$' -bench 'DeliveryWebhook' -benchtime 200000x ./infra/bench/ # destination delivery (issue 17): 200,000 events per batch size, about a minute
# Predictions: train a 30-day churn model on 100,000 generated profiles (120 days), and an ltv
# model on 100,000 with 360 days, and rescore them, once each (seconds; generating the profiles
# is outside the timer). Peak RSS is the whole process's, the dataset included.
go test -run '^$' -bench 'TrainAndScore100k' -benchtime 1x ./infra/bench/
go test -run '^$' -bench PredictionRun100k -benchtime 1x -timeout 60m ./infra/bench/ # the whole run on bbolt: Service.Run after importing 100,000 profiles' 120 days (5–14 min in all, a 10 GB file in TMPDIR)
# The tracking budget's load, 1,000 batches (a steady state: several flushes of the tables), with
# a CPU profile: where the time goes.
prof=$(mktemp -d)
go test -run '^$' -bench TrackingBatch -benchtime "${TRACKING_BATCHES:-1000x}" -cpuprofile "$prof/cpu.out" -o "$prof/bench.test" ./infra/bench/
echo "== CPU profile of BenchmarkTrackingBatch (top by cumulative time, our packages and the big buckets)"
go tool pprof -top -cum -nodecount=40 -ignore 'bench\.BenchmarkTrackingBatch$' "$prof/bench.test" "$prof/cpu.out" 2>/dev/null | sed -n '1,50p'
