#!/usr/bin/env bash
# hack/lint.sh — gofmt (any output fails), go vet and a pinned staticcheck
# with and without the test-only build tags, and the bans runc's forbidigo
# has: os.Create (O_TRUNC without O_EXCL, CVE-2024-45310) and os.Is* error
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; fail=1
fi
# The image helper's libraries need these tags (no gpgme, no btrfs: cgo).
tags=containers_image_openpgp,exclude_graphdriver_btrfs
go vet -tags "$tags" ./...
go vet -tags "integration,$tags" ./...
staticcheck=honnef.co/go/tools/cmd/staticcheck@v0.8.2
go run "$staticcheck" -tags "$tags" ./...
go run "$staticcheck" -tags "integration,$tags" ./...
CGO_ENABLED=1 go run "$staticcheck" -tags libseccomp ./seccomp/...
if grep -rn --include='*.go' -E '\bos\.Create\(|\bos\.Is(NotExist|Exist|Permission)\(' --exclude-dir=testdata . | grep -v '_test.go' | grep -v '^./hack/'; then
	echo "banned: os.Create (use OpenFile with O_EXCL) or os.Is* (use errors.Is)"; fail=1
fi
exit $fail
