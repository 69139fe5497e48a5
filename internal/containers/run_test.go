package containers

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// TestRunRequestCheck: what run IMAGE refuses before anything is made.
func TestRunRequestCheck(t *testing.T) {
	for _, tc := range []struct {
		r    RunRequest
		want string
	}{
		{RunRequest{Name: "web-1.test_a"}, ""},
		{RunRequest{Name: "-x"}, "names must match"},
		{RunRequest{Name: "a/b"}, "names must match"},
		{RunRequest{Name: "a\nb"}, "names must match"},
		{RunRequest{Options: Options{Userns: "keep-id"}}, ""},
	} {
		err := tc.r.check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.r, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.want)
		}
	}
}

// goInitFlags names the flags whose config only the Go init sets up, so
// that such a container's init starts beside the image helper; the rest
// may take the raw init.
func TestGoInitFlags(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, ""},
		{Options{Volumes: []string{"/src:/src"}, Workdir: "/src", User: "1000"}, ""},
		{Options{Init: true}, "--init"},
		{Options{Tmpfs: []string{"/scratch"}}, "a tmpfs that copies the image's directory up (/scratch)"},
		{Options{Tmpfs: []string{"/scratch:notmpcopyup,size=1m"}}, ""},
		{Options{Mounts: []string{"type=tmpfs,destination=/t"}}, "a tmpfs that copies the image's directory up (/t)"},
		{Options{Mounts: []string{"type=tmpfs,destination=/t,notmpcopyup"}}, ""},
		{Options{Mounts: []string{"type=bind,source=/a,destination=/b"}}, ""},
	} {
		if got := goInitFlags(c.o); got != c.want {
			t.Errorf("goInitFlags(%+v) = %q, want %q", c.o, got, c.want)
		}
	}
}

// The bundle's config.json and the record are written by specjson (the
// image path's first encode, five times faster cold than encoding/json's),
// byte for byte what encoding/json writes: HTML-escaped <, > and &,
// sorted map keys, RFC 3339 times, and omitted empty fields alike.
func TestBundleAndRecordBytesAsEncodingJSON(t *testing.T) {
	img := imagehelper.ImageConfig{
		Cmd:    []string{"sh", "-c", "a && b > c < d"},
		Env:    []string{"Q=<&>", "U=\u2028é"},
		Labels: map[string]string{"z": "1", "a": "<b>"},
	}
	s, _, err := Generate(img, Options{Hostname: "h", Annotations: []string{"k=v&w"}}, testDB(), testHost())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeBundle(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("config.json differs from encoding/json's:\n%s\nwant\n%s", got, want)
	}
	rec := Record{Name: "n<1>", Image: "i&j", Created: time.Date(2026, 12, 7, 1, 2, 3, 456789, time.UTC),
		Command: s.Process.Args, Labels: img.Labels, Ports: []string{"8080:80"}, AnonymousVolumes: []string{"v"}}
	if err := writeRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	got, err = os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err = json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(want, '\n')) {
		t.Errorf("the record differs from encoding/json's:\n%s\nwant\n%s", got, want)
	}
}
