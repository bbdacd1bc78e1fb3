# Sourced by test.sh and bench.sh: start_moto starts moto_server on a free loopback port and
# exports UP_TEST_DYNAMODB_ENDPOINT; start_moto_journaled starts the same moto through
# moto_journaled.py (cheap transaction rollback, for load tests) and exports
# UP_TEST_DYNAMODB_JOURNALED_ENDPOINT; start_moto_local starts another moto_server, for the
# local stack's black-box suites on DynamoDB, and exports UP_TEST_LOCAL_DYNAMODB_ENDPOINT.
# All stop when the calling script exits.
# Outside CI a missing tool is skipped with a message; with CI=true it fails.

missing() {
	if [[ "${CI:-}" == "true" ]]; then
		echo "FAIL: $1 is not installed; CI needs it." >&2
		exit 1
	fi
	echo "SKIP: $1 is not installed; what needs it is skipped (CI fails instead)." >&2
}

moto_pids=()
stop_moto() {
	local pid
	for pid in "${moto_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}
trap stop_moto EXIT

# launch_moto VAR COMMAND...: run COMMAND -H 127.0.0.1 -p PORT and export VAR once it answers.
launch_moto() {
	local var=$1 port log pid
	shift
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	log=$(mktemp)
	"$@" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
	pid=$!
	moto_pids+=("$pid")
	for _ in $(seq 1 200); do
		if curl -fs -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
			export "$var=http://127.0.0.1:$port"
			echo "== $* on http://127.0.0.1:$port ($var)"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { echo "$* exited:"; cat "$log"; exit 1; }
		sleep 0.1
	done
	echo "$* did not answer within 20 s:"; cat "$log"; exit 1
}

start_moto() {
	if ! command -v moto_server >/dev/null; then
		missing moto_server
		return 0
	fi
	launch_moto UP_TEST_DYNAMODB_ENDPOINT moto_server
}

# start_moto_local: a moto_server of its own for the local stacks, so that their load does not
# slow the suites on the shared one. Returns 1 when moto_server is missing (outside CI).
start_moto_local() {
	if ! command -v moto_server >/dev/null; then
		missing moto_server
		return 1
	fi
	launch_moto UP_TEST_LOCAL_DYNAMODB_ENDPOINT moto_server
}

start_moto_journaled() {
	if ! python3 -c 'import moto.server' 2>/dev/null; then
		missing "moto (python3 -c 'import moto.server')"
		return 0
	fi
	launch_moto UP_TEST_DYNAMODB_JOURNALED_ENDPOINT python3 infra/scripts/moto_journaled.py
}
