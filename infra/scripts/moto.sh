# Sourced by test.sh and bench.sh: start_moto starts moto_server on a free loopback port,
# exports UP_TEST_DYNAMODB_ENDPOINT and stops it when the calling script exits.
# Outside CI a missing tool is skipped with a message; with CI=true it fails.

missing() {
	if [[ "${CI:-}" == "true" ]]; then
		echo "FAIL: $1 is not installed; CI needs it." >&2
		exit 1
	fi
	echo "SKIP: $1 is not installed; what needs it is skipped (CI fails instead)." >&2
}

moto_pid=""
stop_moto() {
	if [[ -n "$moto_pid" ]]; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
	fi
}

start_moto() {
	if ! command -v moto_server >/dev/null; then
		missing moto_server
		return 0
	fi
	local port log
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	log=$(mktemp)
	moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
	moto_pid=$!
	trap stop_moto EXIT
	for _ in $(seq 1 200); do
		if curl -fs -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
			export UP_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
			echo "== moto_server on $UP_TEST_DYNAMODB_ENDPOINT"
			return 0
		fi
		kill -0 "$moto_pid" 2>/dev/null || { echo "moto_server exited:"; cat "$log"; exit 1; }
		sleep 0.1
	done
	echo "moto_server did not answer within 20 s:"; cat "$log"; exit 1
}
