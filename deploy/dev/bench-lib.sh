# Shared by bench.sh, reference.sh and instructions.sh (sourced, not run): the bench
# accounts the gateway serves and the load generator signs for, and the clean-up of a
# run's NATS namespace. Expects $sim, the release wechat-sim.

# Every bench account shares these; deploy/dev/reference/ holds the same values (for
# bench-safe, whose Token is bench-token).
aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
appid="wxbench000000001"
original_id="gh_bench0000001"

# The Token of account `bench-MODE`: the gateway refuses one that a safe account
# shares with a plaintext or compatible one.
token_of() {
  if [ "$1" = safe ]; then echo bench-token; else echo "bench-token-$1"; fi
}

# Prints the gateway's variables for account `bench-MODE` in MODE (plaintext,
# compatible, safe), one NAME=VALUE a line, for `env`.
account_env() {
  local id="WECHAT_BENCH_${1^^}"
  printf '%s\n' "${id}_APPID=$appid" "${id}_ORIGINAL_ID=$original_id" \
    "${id}_TOKEN=$(token_of "$1")" "${id}_MODE=$1"
  [ "$1" = plaintext ] || printf '%s\n' "${id}_AES_KEY=$aes_key"
}

# The load generator's flags for account `bench-MODE`.
account_flags() {
  printf '%s\n' --account "bench-$1" --appid "$appid" --original-id "$original_id" \
    --token "$(token_of "$1")" --aes-key "$aes_key" --mode "$1"
}

# Deletes what a gateway run left in NATS namespace $1: its stream and reply bucket.
drop_namespace() {
  "$sim" stream-count --prefix "$1" --delete >/dev/null 2>&1 || true
  "$sim" stream-count --stream "KV_${1^^}_GATEWAY_REPLIES" --delete >/dev/null 2>&1 || true
}
