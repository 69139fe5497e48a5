package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The kinds of message (the first byte of a packet).
const (
	KindStdin    byte = 1
	KindStdout   byte = 2
	KindStderr   byte = 3
	KindStdinEOF byte = 4
	KindResize   byte = 5
	KindExit     byte = 6
)

// MaxPayload is the most data one packet carries (conmon's STDIO_BUF_SIZE
// is 8 KiB; a larger one costs fewer packets for a container that
// prints a lot).
const MaxPayload = 32 << 10

// maxPacket is the size of a packet with the largest payload.
const maxPacket = 1 + MaxPayload

// ErrMalformed is a packet that is no message of the protocol.
var ErrMalformed = errors.New("malformed attach message")

// Message is one decoded packet.
type Message struct {
	Kind byte
	Data []byte // stdin, stdout, stderr: the data (aliases the packet)
	Rows uint16 // resize
	Cols uint16 // resize
	Code int    // exit
}

// Decode reads one packet.
func Decode(p []byte) (Message, error) {
	if len(p) == 0 {
		return Message{}, fmt.Errorf("%w: empty packet", ErrMalformed)
	}
	m := Message{Kind: p[0]}
	body := p[1:]
	switch m.Kind {
	case KindStdin, KindStdout, KindStderr:
		if len(body) > MaxPayload {
			return m, fmt.Errorf("%w: %d bytes of data, at most %d", ErrMalformed, len(body), MaxPayload)
		}
		m.Data = body
	case KindStdinEOF:
		if len(body) != 0 {
			return m, fmt.Errorf("%w: stdin EOF with %d bytes", ErrMalformed, len(body))
		}
	case KindResize:
		if len(body) != 4 {
			return m, fmt.Errorf("%w: resize of %d bytes, want 4", ErrMalformed, len(body))
		}
		m.Rows, m.Cols = binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
	case KindExit:
		if len(body) != 4 {
			return m, fmt.Errorf("%w: exit of %d bytes, want 4", ErrMalformed, len(body))
		}
		m.Code = int(int32(binary.BigEndian.Uint32(body)))
	default:
		return m, fmt.Errorf("%w: kind %d", ErrMalformed, m.Kind)
	}
	return m, nil
}

// dataPackets splits p into packets of kind, each at most maxPacket long.
func dataPackets(kind byte, p []byte) [][]byte {
	var out [][]byte
	for len(p) > 0 {
		n := min(len(p), MaxPayload)
		pkt := make([]byte, 1+n)
		pkt[0] = kind
		copy(pkt[1:], p[:n])
		out = append(out, pkt)
		p = p[n:]
	}
	return out
}

func resizePacket(rows, cols uint16) []byte {
	p := []byte{KindResize, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(p[1:], rows)
	binary.BigEndian.PutUint16(p[3:], cols)
	return p
}

func exitPacket(code int) []byte {
	p := []byte{KindExit, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(p[1:], uint32(int32(code)))
	return p
}
