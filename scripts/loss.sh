#!/usr/bin/env bash
# The loss figures: `wink-loss` from a release build, two network namespaces
# with random loss each way on one end of their link (needs root and
# iptables).
#
#   scripts/loss.sh                          30% and 50% loss, 10,000 messages,
#                                            128 in flight; pinger/Pinger 1000 at 30%
#   scripts/loss.sh --loss 0.5 --pinger 1000 one run with these wink-loss options
#
# Exits 1 if any count was wrong, 2 if a run could not be made.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p wink-server -p wink-cli -p wink-examples -p wink-tests --bins
if [ $# -gt 0 ]; then
  exec target/release/wink-loss "$@"
fi
status=0
for args in "--loss 0.3" "--loss 0.5" "--loss 0.3 --pinger 1000"; do
  # shellcheck disable=SC2086 # the options are words
  target/release/wink-loss $args || status=$?
done
exit "$status"
