#!/usr/bin/env bash
# hack/go-toolchain-test.sh — the README's install path on Debian 12's own
# Go: with golang-go 1.19 (golang-1.19-go) alone on PATH, as the test user,
# hack/go-toolchain.sh must put go.mod's Go version first on PATH (fetched
# from the Go module proxy into a fresh module cache) and exit 0. Run as
# root (it installs golang-1.19-go); hack/test.sh runs it. About 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
user=${SANDY_TEST_USER:-sandytest}
old=/usr/lib/go-1.19/bin
if [ ! -x "$old/go" ]; then
	export DEBIAN_FRONTEND=noninteractive
	install=(apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends golang-1.19-go)
	"${install[@]}" >/dev/null 2>&1 || { apt-get update -qq && "${install[@]}" >/dev/null; }
fi
want=$(awk '$1 == "go" { print $2; exit }' go.mod)
home=$(mktemp -d /tmp/sandy-go-toolchain.XXXXXX)
trap 'chmod -R u+w "$home" 2>/dev/null; rm -rf "$home"' EXIT
mkdir "$home/hack"
cp go.mod "$home/"
cp hack/go-toolchain.sh "$home/hack/"
chown -R "$user:" "$home"
got=$(cd "$home" && runuser -u "$user" -- env -i HOME="$home" PATH="$old:/usr/bin:/bin" bash -c '
	set -euo pipefail
	. hack/go-toolchain.sh
	use_go_toolchain
	go env GOVERSION' 2>"$home/stderr") || {
	cat "$home/stderr" >&2
	echo "go-toolchain-test: FAIL: hack/go-toolchain.sh failed with go1.19 on PATH" >&2
	exit 1
}
if [ "$got" != "go$want" ]; then
	cat "$home/stderr" >&2
	echo "go-toolchain-test: FAIL: go1.19 on PATH gave $got, want go$want (go.mod)" >&2
	exit 1
fi
echo "go-toolchain-test: ok: go1.19 on PATH, go.mod's go$want fetched and used"
