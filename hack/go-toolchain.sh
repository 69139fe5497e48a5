# hack/go-toolchain.sh — sourced by the scripts that build sandy: puts on
# PATH a go command that builds the Go version go.mod names.
#
# Go 1.21 and later fetch that version themselves (GOTOOLCHAIN=auto). An
# older go (Debian 12's golang-go is 1.19) cannot: it refuses go.mod
# ("invalid go version"). Then this fetches the toolchain the way Go 1.21+
# does: the module golang.org/toolchain@v0.0.1-goVERSION.OS-ARCH from the
# Go module proxy, checked against the checksum database, into the module
# cache, its programs made executable (module zips keep no modes); and
# puts its bin/ first on PATH, with GOTOOLCHAIN=local. Nothing is fetched
# when the go found is new enough, or switches by itself.
#
#   export PATH=...          # where the script looks for go (/usr/local/go/bin)
#   . hack/go-toolchain.sh
#   use_go_toolchain         # exits the script with the reason on failure

use_go_toolchain() {
	export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
	if ! command -v go >/dev/null; then
		echo "no Go toolchain: apt-get install golang-go (an old one is enough: hack/go-toolchain.sh fetches the version go.mod names from the Go module proxy)" >&2
		exit 1
	fi
	local want have minor
	want=$(awk '$1 == "go" { print $2; exit }' "$(dirname "${BASH_SOURCE[0]}")/../go.mod")
	have=$(go env GOVERSION 2>/dev/null) || have=$(go version | awk '{ print $3 }')
	minor=$(echo "$have" | sed -nE 's/^go1\.([0-9]+).*/\1/p')
	if [ -z "$minor" ] || [ "$minor" -ge 21 ]; then
		return 0 # new enough to switch by itself, or a development build
	fi
	local mod dir
	mod=golang.org/toolchain@v0.0.1-go$want.$(go env GOHOSTOS)-$(go env GOHOSTARCH)
	echo "hack/go-toolchain.sh: $have cannot build go.mod's Go $want; fetching $mod from the Go module proxy" >&2
	# From / : an old go reads no go.mod there (it refuses ours).
	dir=$(cd / && go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
	if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
		echo "hack/go-toolchain.sh: fetching $mod failed; install Go $want or newer (https://go.dev/dl/) and put it first on PATH" >&2
		exit 1
	fi
	find "$dir/bin" "$dir/pkg/tool" -type f ! -perm -u+x -exec chmod u+x,go+rx {} +
	export PATH=$dir/bin:$PATH GOTOOLCHAIN=local
	echo "hack/go-toolchain.sh: using $(go version)" >&2
}
