package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The binary form of a compiled filter, for a process that installs a
// filter another compiled (the container's init gets its container's from
// the host, which compiles it while the init starts): "SBPF1", the
// seccomp(2) flags (8 bytes, little-endian), 1 when the filter needs a
// notify listener else 0, then the program, 8 bytes an instruction (code
// 2, jt 1, jf 1, k 4; little-endian). What Load needs and nothing else:
// the profile's unknown syscall names and architectures stay with the
// compiler.

const binaryMagic = "SBPF1"

// MarshalBinary encodes the filter's program, flags and listener need.
func (f *Filter) MarshalBinary() ([]byte, error) {
	if len(f.prog) == 0 {
		return nil, ErrNoProfile
	}
	b := make([]byte, 0, len(binaryMagic)+9+8*len(f.prog))
	b = append(b, binaryMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(f.flags))
	notify := byte(0)
	if f.notify {
		notify = 1
	}
	b = append(b, notify)
	for _, in := range f.prog {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return b, nil
}

// UnmarshalBinary makes f the filter MarshalBinary encoded. It refuses a
// truncated or empty program and one longer than the kernel takes
// (BPF_MAXINSNS); the kernel's verifier checks the rest at Load.
func (f *Filter) UnmarshalBinary(b []byte) error {
	head := len(binaryMagic) + 9
	if len(b) < head || string(b[:len(binaryMagic)]) != binaryMagic {
		return errors.New("seccomp filter: not a compiled filter")
	}
	body := b[head:]
	if len(body) == 0 || len(body)%8 != 0 {
		return fmt.Errorf("seccomp filter: a program of %d bytes, not whole instructions", len(body))
	}
	if len(body)/8 > 4096 {
		return fmt.Errorf("seccomp filter: %d instructions: %w", len(body)/8, ErrTooLarge)
	}
	prog := make([]unix.SockFilter, len(body)/8)
	for i := range prog {
		in := body[8*i:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
	}
	*f = Filter{
		prog:   prog,
		flags:  uintptr(binary.LittleEndian.Uint64(b[len(binaryMagic):])),
		notify: b[len(binaryMagic)+8] != 0,
	}
	return nil
}
