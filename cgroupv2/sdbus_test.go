//go:build linux

package cgroupv2

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeSystemd is a direct (peer-to-peer) D-Bus server that reads the way
// systemd 252's sd-bus does: whatever arrived with the client's BEGIN
// stays in its buffer until a later read returns more bytes; each read
// then answers every whole method call buffered (pings that want no
// reply get none). It waits before it reads BEGIN, so that BEGIN and the
// first call arrive together, as they do when systemd is busy.
type fakeSystemd struct {
	ln    net.Listener
	calls chan string // the members answered, in order
}

func startFakeSystemd(t *testing.T) (*fakeSystemd, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "private")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{ln: ln, calls: make(chan string, 16)}
	t.Cleanup(func() { ln.Close() })
	go f.serve(t)
	return f, "unix:path=" + sock
}

func (f *fakeSystemd) serve(t *testing.T) {
	c, err := f.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// godbus: "\0AUTH", REJECTED with the mechanisms, "AUTH EXTERNAL <uid>", OK.
	for _, answer := range []string{"REJECTED EXTERNAL\r\n", "OK 0123456789abcdef0123456789abcdef\r\n"} {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		if _, err := c.Write([]byte(answer)); err != nil {
			return
		}
	}
	time.Sleep(100 * time.Millisecond) // BEGIN and the first call arrive together
	buf := make([]byte, 1<<16)
	var pending []byte
	running := false
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		pending = append(pending, buf[:n]...)
		if !running {
			i := bytes.Index(pending, []byte("BEGIN\r\n"))
			if i < 0 {
				continue
			}
			pending, running = pending[i+len("BEGIN\r\n"):], true
			continue // sd-bus: the rest waits for the next read
		}
		for {
			msg, rest, ok := nextMessage(pending)
			if !ok {
				break
			}
			pending = rest
			if msg.Flags&dbus.FlagNoReplyExpected != 0 {
				continue
			}
			member, _ := msg.Headers[dbus.FieldMember].Value().(string)
			reply := &dbus.Message{Type: dbus.TypeMethodReply, Headers: map[dbus.HeaderField]dbus.Variant{
				dbus.FieldReplySerial: dbus.MakeVariant(msg.Serial()),
				dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(dbus.ObjectPath(""))),
			}, Body: []any{dbus.ObjectPath("/org/freedesktop/systemd1/job/1")}}
			var out bytes.Buffer
			if _, err := reply.EncodeToWithFDs(&out, binary.LittleEndian); err != nil {
				t.Errorf("encoding the reply: %v", err)
				return
			}
			// A serial of our own (EncodeTo leaves it 0, which is invalid).
			binary.LittleEndian.PutUint32(out.Bytes()[8:12], msg.Serial())
			if _, err := c.Write(out.Bytes()); err != nil {
				return
			}
			f.calls <- member
		}
	}
}

// nextMessage decodes the first whole D-Bus message of b (little-endian,
// as godbus writes): 16 fixed bytes, the header fields padded to 8, the
// body.
func nextMessage(b []byte) (*dbus.Message, []byte, bool) {
	if len(b) < 16 {
		return nil, b, false
	}
	body := binary.LittleEndian.Uint32(b[4:8])
	fields := binary.LittleEndian.Uint32(b[12:16])
	total := 16 + int(fields+7)&^7 + int(body)
	if len(b) < total {
		return nil, b, false
	}
	msg, err := dbus.DecodeMessage(bytes.NewReader(b[:total]))
	if err != nil {
		return nil, b, false
	}
	return msg, b[total:], true
}

// TestDirectBusFirstCallAnswered: the first call on a direct connection
// to a systemd that left it buffered with BEGIN is answered all the same
// (awaitReply's ping wakes it), within a second, not callTimeout. Before
// the fix, StopUnit of sandy delete waited the whole 30 s in the VM, 4
// times in 10.
func TestDirectBusFirstCallAnswered(t *testing.T) {
	f, addr := startFakeSystemd(t)
	b, err := dialBus(addr, true, busTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	var job dbus.ObjectPath
	err = b.call(ctx, "StopUnit", &job, "sandy-c1.scope", "replace")
	if err != nil || !strings.HasSuffix(string(job), "/job/1") {
		t.Fatalf("StopUnit on a fresh direct connection: %q, %v (after %v)", job, err, time.Since(t0))
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("StopUnit answered after %v, want well under a second", d)
	}
	if m := <-f.calls; m != "StopUnit" {
		t.Fatalf("the fake answered %s first", m)
	}
	// Past the first reply nothing more is sent to wake systemd.
	if !b.answered.Load() {
		t.Fatal("the connection is not marked answered")
	}
}
