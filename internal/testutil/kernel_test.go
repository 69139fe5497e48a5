package testutil

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release      string
		major, minor int
		want         bool
	}{
		{"6.1.0-18-amd64", 5, 11, true},
		{"5.11.0", 5, 11, true},
		{"5.10.209-1", 5, 11, false},
		{"4.19.0", 5, 11, false},
		{"6.18.44-fc-v1300", 6, 18, true},
		{"garbage", 5, 11, true},
	} {
		if got := KernelAtLeast(tc.release, tc.major, tc.minor); got != tc.want {
			t.Errorf("KernelAtLeast(%q, %d, %d) = %v, want %v", tc.release, tc.major, tc.minor, got, tc.want)
		}
	}
}
