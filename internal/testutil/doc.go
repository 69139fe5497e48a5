// Package testutil holds helpers shared by sandy's tests: skips that turn into
// failures on CI, running a test as the unprivileged test user, building the
// sandy binary once, and making busybox bundles.
//
// Integration tests (build tag integration) call AsUser first:
//
//	func TestRunTrue(t *testing.T) {
//		if testutil.AsUser(t) {
//			return // the test ran in a child process as the test user
//		}
//		...
//	}
//
// As root, AsUser copies the test binary where the test user can read it and
// re-runs just this test as that user (the way Go's own syscall tests run
// testAmbientCaps); as any other user it returns false and the test goes on
// in-process.
package testutil
