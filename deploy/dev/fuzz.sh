#!/usr/bin/env bash
# Hostile-input run (issue 16, item 2): the property tests over arbitrary and mutated
# bytes for the XML reader, the message parser and the decryptor (wechat), the
# callback query parser (gateway) and the API-key parser (platform), for a time
# budget, with many more cases than the normal test run and a fresh random seed each
# round. Needs no services and nothing beyond the pinned stable toolchain: coverage-
# guided fuzzers (cargo-fuzz) need nightly, so this is proptest, not libFuzzer.
#
#   deploy/dev/fuzz.sh                        # ~5 min after the build
#   FUZZ_SECONDS=60 FUZZ_CASES=2000 deploy/dev/fuzz.sh
#
# Env: FUZZ_SECONDS (budget in s, default 300; a round that started finishes),
# FUZZ_CASES (cases per property per round, default 5000).
# A failure stops the run and prints the shrunk input; proptest also saves its seed
# in a `*.proptest-regressions` file next to the test. Turn it into a named
# regression test in the normal suite, fix the parser, then delete that file.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
budget="${FUZZ_SECONDS:-300}"
cases="${FUZZ_CASES:-5000}"

targets=(
  "-p wechat --test fuzz_wechat"
  "-p platform --test api_keys_props"
  "-p gateway --lib query_props"
)

echo "fuzz: building the targets"
for target in "${targets[@]}"; do
  # shellcheck disable=SC2086 # the target is a list of cargo arguments
  cargo test --quiet $target --no-run
done

start=$SECONDS
rounds=0
while (( SECONDS - start < budget )); do
  rounds=$((rounds + 1))
  for target in "${targets[@]}"; do
    log="$(mktemp)"
    # shellcheck disable=SC2086
    if ! PROPTEST_CASES="$cases" cargo test --quiet $target >"$log" 2>&1; then
      cat "$log"
      rm -f "$log"
      echo "fuzz: FAILED in round $rounds ($target) after $((SECONDS - start)) s" >&2
      exit 1
    fi
    rm -f "$log"
  done
  echo "fuzz: round $rounds clean ($cases cases per property, $((SECONDS - start)) s)"
done
echo "fuzz: clean: $rounds rounds × $cases cases per property in $((SECONDS - start)) s"
