package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData is the input of a filter (linux/seccomp.h struct seccomp_data).
type seccompData struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

// bytes lays the data out for golang.org/x/net/bpf's VM, whose loads are
// big-endian: every 32-bit word is stored big-endian at the offset the
// kernel's little-endian layout gives it, so the program sees the values a
// little-endian kernel would show it.
func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], d.nr)
	binary.BigEndian.PutUint32(b[4:], d.arch)
	for i, a := range d.args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

type vm struct{ m *bpf.VM }

func newVM(t testing.TB, prog []unix.SockFilter) vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	m, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	return vm{m}
}

func (v vm) run(t testing.TB, d seccompData) uint32 {
	r, err := v.m.Run(d.bytes())
	if err != nil {
		t.Fatalf("running filter on %+v: %v", d, err)
	}
	return uint32(r)
}
