#!/usr/bin/env bash
# hack/install.sh — build sandy and its image helpers (static, CGO_ENABLED=0):
# sandy-image (the image commands), sandy-store (the storage verbs of
# `sandy run IMAGE`, without the image library's copy stack) and
# sandy-create (the storage container of `sandy run IMAGE` for an image
# named as stored, without the image library at all), and sandy-net
# (the program of sandy's own network, run's default), and install the five into one directory,
# where sandy looks for the helpers.
#   bash hack/install.sh                 # as root: /usr/local/bin; else ~/.local/bin
#   PREFIX=/opt/sandy bash hack/install.sh
# Needs Go: any (Debian 12's golang-go, 1.19, is enough): the version go.mod
# names is fetched from the Go module proxy when the go found is older
# (hack/go-toolchain.sh, as GOTOOLCHAIN=auto does from Go 1.21). Installed
# by root, the binaries are not writable by the users who run them, so sandy
# starts containers from the file itself instead of a sealed copy of it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PREFIX:-}" ]; then
	if [ "$(id -u)" -eq 0 ]; then PREFIX=/usr/local; else PREFIX=$HOME/.local; fi
fi
bin=$PREFIX/bin
export PATH=$PATH:/usr/local/go/bin
. hack/go-toolchain.sh
use_go_toolchain
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$tmp/sandy" ./cmd/sandy
for helper in sandy-image sandy-store sandy-create; do
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -tags containers_image_openpgp,exclude_graphdriver_btrfs -o "$tmp/$helper" "./internal/cmd/$helper"
done
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/sandy-net" ./internal/cmd/sandy-net
mkdir -p "$bin"
install -m 0755 "$tmp/sandy" "$tmp/sandy-image" "$tmp/sandy-store" "$tmp/sandy-create" "$tmp/sandy-net" "$bin/"
echo "installed $bin/sandy, $bin/sandy-image, $bin/sandy-store, $bin/sandy-create and $bin/sandy-net ($version)"
case ":$PATH:" in
*":$bin:"*) ;;
*) echo "add $bin to your PATH: echo 'export PATH=\"$bin:\$PATH\"' >> ~/.profile" ;;
esac
