#!/usr/bin/env bash
# The production shape on one machine: nginx on PORT in front of two gunicorn instances on loopback, each run with
# the Procfile's settings (gunicorn.conf.py and the environment) and restarted if it dies, as a process manager
# would. SIGTERM or Ctrl-C stops them all. For trying the front out and for tests/test_front.py; docs/deploy.md.
#
#   deploy/run-local.sh PORT
#
# Environment: APP_PORTS (default "PORT+1 PORT+2"; two or more ports), LISTEN (default 127.0.0.1:PORT),
# CONN_PER_CLIENT (default 32), RATE_PER_CLIENT (default 30r/s) and RATE_BURST (default 30), PYTHON (default
# python3), NGINX (default nginx), and the app's own settings (WEB_CONCURRENCY, MODEL_PATH, MAX_UPLOAD_MB, ...),
# which every instance gets.
set -euo pipefail

PORT=${1:?usage: deploy/run-local.sh PORT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
NGINX=${NGINX:-nginx}
read -r -a APP_PORTS <<< "${APP_PORTS:-$((PORT + 1)) $((PORT + 2))}"
RUN=$(mktemp -d "${TMPDIR:-/tmp}/mask-front.XXXXXX")  # nginx's prefix: pid, logs, temp paths; removed at exit

user_line=""
if [ "$(id -u)" -eq 0 ]; then
    user_line="user $(id -un) $(id -gn);"  # as root, nginx would hand its workers to "nobody"; stay the caller
fi
sed -e "s|@USER_LINE@|${user_line}|" -e "s|@RUN@|${RUN}|g" -e "s|@LISTEN@|${LISTEN:-127.0.0.1:${PORT}}|" \
    -e "s|@MAX_MB@|${MAX_UPLOAD_MB:-10}|g" -e "s|@CONN_PER_CLIENT@|${CONN_PER_CLIENT:-32}|" \
    -e "s|@RATE_PER_CLIENT@|${RATE_PER_CLIENT:-30r/s}|" -e "s|@RATE_BURST@|${RATE_BURST:-30}|" \
    "$ROOT/deploy/nginx.conf" \
  | awk -v ports="${APP_PORTS[*]}" '$0 == "@SERVERS@" {
        n = split(ports, p, " ")
        for (i = 1; i <= n; i++) printf "        server 127.0.0.1:%s max_fails=1 fail_timeout=5s;\n", p[i]
        next
    } { print }' > "$RUN/nginx.conf"

touch "$RUN/running"
stop() {
    rm -f "$RUN/running"
    for pid_file in "$RUN"/app-*.pid "$RUN/nginx.pid"; do
        [ -s "$pid_file" ] && kill -TERM "$(cat "$pid_file")" 2>/dev/null || true
    done
    wait || true
    rm -rf "$RUN"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

keep_running() {  # one instance on 127.0.0.1:$1, started again whenever it exits, until the front stops
    local port=$1
    while [ -e "$RUN/running" ]; do
        (cd "$ROOT" && PORT=$port exec "$PYTHON" -m gunicorn app:app --config gunicorn.conf.py \
            --bind "127.0.0.1:${port}" --pid "$RUN/app-${port}.pid") || true
        [ -e "$RUN/running" ] && echo "run-local: instance on port ${port} exited; starting it again" >&2 && sleep 1
    done
}
for port in "${APP_PORTS[@]}"; do
    keep_running "$port" &
done

"$NGINX" -t -q -p "$RUN" -e "$RUN/error.log" -c "$RUN/nginx.conf"
"$NGINX" -p "$RUN" -e "$RUN/error.log" -c "$RUN/nginx.conf" -g "daemon off;" &
echo "run-local: nginx on ${LISTEN:-127.0.0.1:${PORT}} in front of gunicorn on ports ${APP_PORTS[*]} (prefix ${RUN})" >&2
wait
