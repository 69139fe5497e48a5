package attach

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, MaxPayload)
	tests := []struct {
		name string
		in   []byte
		want Message
		bad  bool
	}{
		{name: "stdout", in: []byte{KindStdout, 'h', 'i'}, want: Message{Kind: KindStdout, Data: []byte("hi")}},
		{name: "stderr empty", in: []byte{KindStderr}, want: Message{Kind: KindStderr, Data: []byte{}}},
		{name: "stdin max", in: append([]byte{KindStdin}, big...), want: Message{Kind: KindStdin, Data: big}},
		{name: "stdin too long", in: append([]byte{KindStdin, 'y'}, big...), bad: true},
		{name: "eof", in: []byte{KindStdinEOF}, want: Message{Kind: KindStdinEOF}},
		{name: "eof with data", in: []byte{KindStdinEOF, 0}, bad: true},
		{name: "resize", in: resizePacket(33, 111), want: Message{Kind: KindResize, Rows: 33, Cols: 111}},
		{name: "resize short", in: []byte{KindResize, 0, 1, 0}, bad: true},
		{name: "resize long", in: []byte{KindResize, 0, 1, 0, 1, 0}, bad: true},
		{name: "exit", in: exitPacket(137), want: Message{Kind: KindExit, Code: 137}},
		{name: "exit negative", in: exitPacket(-1), want: Message{Kind: KindExit, Code: -1}},
		{name: "exit short", in: []byte{KindExit, 1}, bad: true},
		{name: "empty", in: nil, bad: true},
		{name: "unknown kind", in: []byte{0, 1, 2}, bad: true},
		{name: "kind 255", in: []byte{255}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if tt.bad {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode(%v) = %+v, %v; want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.want.Kind || !bytes.Equal(got.Data, tt.want.Data) || got.Rows != tt.want.Rows || got.Cols != tt.want.Cols || got.Code != tt.want.Code {
				t.Errorf("Decode = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDataPacketsSplit(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), MaxPayload/5+3) // a bit over two payloads
	pkts := dataPackets(KindStdout, data)
	if len(pkts) != 3 {
		t.Fatalf("%d packets, want 3", len(pkts))
	}
	var joined []byte
	for _, p := range pkts {
		if len(p) > maxPacket {
			t.Errorf("packet of %d bytes, at most %d", len(p), maxPacket)
		}
		m, err := Decode(p)
		if err != nil || m.Kind != KindStdout {
			t.Fatalf("Decode: %+v, %v", m, err)
		}
		joined = append(joined, m.Data...)
	}
	if !bytes.Equal(joined, data) {
		t.Error("the packets do not join to the data")
	}
	if got := dataPackets(KindStdout, nil); len(got) != 0 {
		t.Errorf("no data: %d packets", len(got))
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{KindStdin, 'a'})
	f.Add(resizePacket(1, 2))
	f.Add(exitPacket(3))
	f.Add([]byte{KindStdinEOF})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := Decode(p)
		if err != nil {
			return
		}
		switch m.Kind {
		case KindStdin, KindStdout, KindStderr:
			if pkts := dataPackets(m.Kind, m.Data); len(m.Data) > 0 && (len(pkts) != 1 || !bytes.Equal(pkts[0], p)) {
				t.Errorf("data %v does not encode back", p)
			}
		case KindResize:
			if !bytes.Equal(resizePacket(m.Rows, m.Cols), p) {
				t.Errorf("resize %v does not encode back", p)
			}
		case KindExit:
			if !bytes.Equal(exitPacket(m.Code), p) {
				t.Errorf("exit %v does not encode back", p)
			}
		}
	})
}
