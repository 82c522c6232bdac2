#!/usr/bin/env bash
# fuzz.sh: what `go tool task fuzz` runs. Runs every fuzz target, one after another, for
# FUZZTIME each (default 60s), and prints a line of figures per target: executions, their rate,
# and the corpus (committed seeds under testdata/fuzz/FuzzX plus what the run found, kept in
# go's cache). A crasher fails the run; go writes it under the target's testdata/fuzz/, where it
# is committed as the seed that shows the bug once fixed.
#
#   scripts/fuzz.sh                      every target, 60 s each
#   FUZZTIME=3s scripts/fuzz.sh          the smoke that scripts/test.sh runs
#   scripts/fuzz.sh FuzzParseAddress     only the targets named
#
# FUZZPARALLEL sets the workers per target (default: go's, GOMAXPROCS). FUZZMINIMIZE bounds the
# minimizing of each new input (default 5s; go's own default, 60s, let one new input of
# FuzzVerifyCertificate take a whole 60 s run: 20 executions, 0/s).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
cd "$ROOT"

FUZZTIME=${FUZZTIME:-60s}
parallel=()
[[ -n ${FUZZPARALLEL:-} ]] && parallel=(-parallel "$FUZZPARALLEL")

# package target: every fuzz target of the repository (fuzz.sh fails when one is missing here).
targets=(
	"./domain FuzzNormalizeDomainName"
	"./domain FuzzParseAddress"
	"./domain FuzzParseMemberURL"
	"./domain FuzzLDAPFilter"
	"./domain FuzzVerifyCertificate"
	"./domain FuzzSplitBundle"
	"./commands FuzzReadImportCSV"
	"./commands FuzzReadImportJSONL"
	"./commands FuzzMemberURLFilter"
	"./api FuzzDecodeRequest"
	"./api FuzzMergePatch"
	"./api FuzzWithoutSecrets"
	"./eventstore FuzzUpcast"
	"./api/policy FuzzReadRequest"
)

# Every Fuzz function in the tree must be listed, so that none is silently left out.
listed=$(printf '%s\n' "${targets[@]}" | awk '{print $2}' | sort)
found=$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' --include='*_test.go' . | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' | sort)
if [[ $listed != "$found" ]]; then
	echo "fuzz.sh: the target list differs from the Fuzz functions in the tree:" >&2
	diff <(echo "$listed") <(echo "$found") >&2 || true
	exit 1
fi

want=("$@")
cache=$(go env GOCACHE)/fuzz
summary=()
start=$SECONDS
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	if ((${#want[@]})) && [[ ! " ${want[*]} " == *" $name "* ]]; then
		continue
	fi
	echo "== $pkg $name ($FUZZTIME)"
	log=$(mktemp)
	t0=$SECONDS
	status=0
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINIMIZE:-5s}" "${parallel[@]}" "$pkg" >"$log" 2>&1 || status=$?
	grep -v '^fuzz: elapsed' "$log" || true
	last=$(grep '^fuzz: elapsed' "$log" | tail -1 || true)
	if [[ $status -ne 0 ]]; then
		# Go's fuzzer can end a run whose time is up while a worker is still busy with "context
		# deadline exceeded" and no failing input: that is the clock, not a crasher (none is
		# written). Anything else, or any written input, fails the run.
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
			echo "fuzz.sh: $name: the time ran out while a worker was busy (no failing input); not a crash" >&2
		else
			rm -f "$log"
			echo "fuzz.sh: $name failed (the crasher is under $pkg/testdata/fuzz/$name/)" >&2
			exit 1
		fi
	fi
	rm -f "$log"
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	elapsed=$(sed -nE 's/.*elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
	# A directory that is not there counts 0 (find fails on it, and pipefail would end the run).
	seeds=$({ find "$pkg/testdata/fuzz/$name" -type f 2>/dev/null || true; } | wc -l)
	mod=$(go list -f '{{.ImportPath}}' "$pkg")
	cached=$({ find "$cache/$mod/$name" -type f 2>/dev/null || true; } | wc -l)
	secs=$((SECONDS - t0))
	rate=$(awk -v e="${execs:-0}" -v s="$(sed -E 's/([0-9]+)m/\1*60+/; s/s$//' <<<"${elapsed:-0s}" | bc 2>/dev/null || echo 0)" 'BEGIN { if (s > 0) printf "%d", e / s; else print 0 }')
	summary+=("$(printf '%-26s %-12s execs %10s  %7s/s  fuzzing %6s  corpus %4d seeds + %5d found  (wall %ds)' "$name" "$pkg" "${execs:-0}" "$rate" "${elapsed:-?}" "$seeds" "$cached" "$secs")")
done

echo
echo "fuzz.sh: FUZZTIME=$FUZZTIME, $((SECONDS - start)) s in all, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
printf '%s\n' "${summary[@]}"
