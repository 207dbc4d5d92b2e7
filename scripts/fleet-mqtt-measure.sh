#!/usr/bin/env bash
# Measures `mls-fleet --broker` against a Mosquitto of its own (README, "The
# fleet over an MQTT broker"): wall and CPU time of the fleet, the broker's
# CPU time (/proc/<pid>/stat), the load average before and after.
#   scripts/fleet-mqtt-measure.sh DEVICES ROUNDS [--threads]
# Needs a release build (cargo build --release -p platform-std) and mosquitto.
set -euo pipefail
devices=$1 rounds=$2 mode=${3:-}
port=${PORT:-18831}
dir=$(mktemp -d /tmp/flm-XXXXXX)
chmod 777 "$dir"
# One connection per member; each thread member holds about 10 files.
ulimit -n "$(ulimit -Hn)"
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $dir/
max_queued_messages 1000000
max_inflight_messages 100
log_dest file $dir/mosquitto.log
CONF
mosquitto -c "$dir/mosquitto.conf" &
broker=$!
# The state is removed after a run that passed and kept after one that
# failed (the members' logs say why).
trap 'status=$?; kill $broker 2>/dev/null; wait $broker 2>/dev/null; if [ $status -eq 0 ]; then rm -rf "$dir"; else echo "state kept in $dir" >&2; fi' EXIT
while ! (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.1; done
# utime + stime of the broker, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$broker/stat"; }
echo "load before: $(cat /proc/loadavg); rustc processes: $(pgrep -c rustc || true)"
b0=$(cpu)
/usr/bin/time -f "fleet: wall %e s, user %U s, sys %S s, max RSS %M KiB" \
  target/release/mls-fleet --broker "mqtt://127.0.0.1:$port" --members "$devices" --rounds "$rounds" \
  --state-dir "$dir/state" $mode
b1=$(cpu)
awk -v a="$b0" -v b="$b1" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "broker CPU: %.2f s\n", (b - a) / t }'
echo "load after: $(cat /proc/loadavg); rustc processes: $(pgrep -c rustc || true)"
