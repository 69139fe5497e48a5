#!/usr/bin/env bash
# hack/test.sh — set up this machine (as root) and run every test: lint,
# unit tests, and the integration tests, which build sandy and run it as the
# unprivileged test user. CI=true turns every skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
# The test binaries and the sandy binary are copied to a directory every
# user can read; integration tests re-run themselves as the test user.
export TMPDIR=${TMPDIR:-/tmp}

echo "== lint"
bash hack/lint.sh

echo "== unit tests"
go test -count=1 ./...

echo "== integration tests (rootless, as ${SANDY_TEST_USER:-sandytest})"
go test -count=1 -tags integration -timeout 30m ./...
