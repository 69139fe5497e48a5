package seccomp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile: any profile either compiles to a program the kernel's
// checker would accept, whose every path ends in a return, or is refused
// with an error; the compiler never panics.
//
//	go test -fuzz=FuzzCompile -fuzztime=1000000x ./seccomp
//
// (a count, not a duration: see hack/seccomp-test.sh)
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	for _, p := range runcBatsProfiles() {
		data, _ := json.Marshal(p)
		f.Add(data)
	}
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_ARM","SCMP_ARCH_AARCH64"],` +
		`"syscalls":[{"names":["socket","ipc","semget"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_GT"},{"index":0,"value":4294967296,"op":"SCMP_CMP_LE"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p specs.LinuxSeccomp
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		fl, err := compile(&p, options{native: archX86_64, enosys: true})
		if err != nil {
			return
		}
		if err := validate(fl.Instructions()); err != nil {
			t.Fatalf("invalid program: %v", err)
		}
		// Every input must reach a return inside the program.
		v := newVM(t, fl.Instructions())
		for _, d := range []seccompData{{arch: archX86_64.audit}, {arch: archX86.audit, nr: 102, args: [6]uint64{1}}, {arch: archX86_64.audit, nr: 0xffffffff}} {
			v.run(t, d)
		}
	})
}
