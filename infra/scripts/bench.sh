#!/usr/bin/env bash
# make bench: the benchmarks of infra/bench, with moto_server for the Lambda cold start.
# Copy the figures into BENCHMARKS.md with the machine, the command and the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
source infra/scripts/moto.sh
start_moto
echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(go version)"
go test -run '^$' -bench "${BENCH:-.}" -skip ProfilesTraits -benchtime "${BENCHTIME:-2s}" ./infra/bench/
# Paced at 1,000 requests/s: a fixed count, not a duration.
go test -run '^$' -bench ProfilesTraits -benchtime 5000x ./infra/bench/
