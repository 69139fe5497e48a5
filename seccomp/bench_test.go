//go:build linux && (amd64 || arm64)

package seccomp

import (
	"runtime"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func BenchmarkCompileMobyDefault(b *testing.B) {
	p := DefaultProfile(nil)
	var f *Filter
	for b.Loop() {
		var err error
		if f, err = Compile(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.Instructions())), "insns")
}

// getpidLoops is how many getpid(2) calls a victim makes per measurement.
const getpidLoops = 2_000_000

// benchGetpid reports the time of one getpid(2) in a victim process that
// runs under the given profile or raw program (none: no filter).
func benchGetpid(b *testing.B, req victimRequest) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		b.Skip("amd64 and arm64 only")
	}
	req.Loops = getpidLoops
	t := &testing.T{}
	var sum float64
	n := 0
	for b.Loop() {
		got, sig := runVictim(t, req)
		if sig != 0 || len(got) != 1 {
			b.Fatalf("victim: %v %v", got, sig)
		}
		sum += float64(got[0]) / 10
		n++
	}
	b.ReportMetric(sum/float64(n), "ns/getpid")
}

func BenchmarkGetpid(b *testing.B) {
	b.Run("no-filter", func(b *testing.B) { benchGetpid(b, victimRequest{}) })
	b.Run("sandy-moby-default", func(b *testing.B) { benchGetpid(b, victimRequest{Profile: DefaultProfile(nil)}) })
	b.Run("sandy-allow-all", func(b *testing.B) {
		benchGetpid(b, victimRequest{Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}})
	})
}
