#!/usr/bin/env bash
# go tool task upgrade: a rolling upgrade with real binaries (TestRollingUpgrade, cmd/mailplane).
#
#   scripts/upgrade.sh [COMMIT]
#
# Builds mailplane at COMMIT (default: the main-line commit just before the TOTP events came,
# which the test's new writes use) in a detached worktree under .dev/upgrade/, then runs
# TestRollingUpgrade with it as the old release beside this checkout's serve. The old commit
# must lack the TOTP events. Too slow for CI (a whole build of another tree); CI runs
# TestRollingUpgradeInProcess instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [[ $# -ge 1 ]]; then
	from=$(git rev-parse --verify "$1^{commit}")
else
	# The first main-line commit whose domain package has TOTPEnrolmentStarted, and its parent.
	intro=$(git log --first-parent --reverse --format=%H -S TOTPEnrolmentStarted -- domain | head -n 1)
	[[ -n $intro ]] || { echo "upgrade: no commit introduced TOTPEnrolmentStarted" >&2; exit 1; }
	from=$(git rev-parse "$intro^1")
fi
if git grep -q TOTPEnrolmentStarted "$from" -- domain; then
	echo "upgrade: $from already has the TOTP events: pick an older commit" >&2
	exit 1
fi
dir=$root/.dev/upgrade
src=$dir/src-${from:0:12}
bin=$dir/mailplane-${from:0:12}
mkdir -p "$dir"
t0=$(date +%s.%N)
if [[ ! -x $bin ]]; then
	git worktree remove --force "$src" 2>/dev/null || true
	git worktree add --detach "$src" "$from" >/dev/null
	trap 'git -C "$root" worktree remove --force "$src" >/dev/null 2>&1 || true' EXIT
	(cd "$src" && go build -o "$bin" ./cmd/mailplane)
fi
t1=$(date +%s.%N)
echo "upgrade: old release $(git log -1 --format='%h %s' "$from" | cut -c1-100)" >&2
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "upgrade: old binary ready in %.1fs\n", b - a }' >&2
MAILPLANE_UPGRADE_OLD_BIN=$bin scripts/test.sh ./cmd/mailplane -run '^TestRollingUpgrade$' -v
t2=$(date +%s.%N)
awk -v a="$t1" -v b="$t2" 'BEGIN { printf "upgrade: test run (build of this tree included) %.1fs\n", b - a }' >&2
