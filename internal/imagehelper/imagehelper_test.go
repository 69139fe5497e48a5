package imagehelper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocateFrom(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	libexec := filepath.Join(root, "libexec", "sandy")
	for _, d := range []string{bin, libexec} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := locateFrom(bin); err == nil || !strings.Contains(err.Error(), "go build") {
		t.Fatalf("no helper installed: want an error with the fix, got %v", err)
	}
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(libexec, Name), 0o755)
	if got, err := locateFrom(bin); err != nil || got != filepath.Join(bin, "..", "libexec", "sandy", Name) {
		t.Fatalf("libexec helper: got %q, %v", got, err)
	}
	write(filepath.Join(bin, Name), 0o644) // not executable: skipped
	if got, _ := locateFrom(bin); got == filepath.Join(bin, Name) {
		t.Fatalf("a non-executable helper was chosen")
	}
	if err := os.Chmod(filepath.Join(bin, Name), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := locateFrom(bin); err != nil || got != filepath.Join(bin, Name) {
		t.Fatalf("helper beside sandy: got %q, %v", got, err)
	}
}

func TestIsVerb(t *testing.T) {
	for _, v := range []string{"pull", "images", "rmi", "image", "load", "save", "login"} {
		if !IsVerb(v) {
			t.Errorf("%s: not an image verb", v)
		}
	}
	for _, v := range []string{"run", "create", "exec", "ps", ""} {
		if IsVerb(v) {
			t.Errorf("%s: taken as an image verb", v)
		}
	}
}

func TestCreateRequestID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	args := CreateRequest{Image: "busybox", ID: id, Name: "web", Global: []string{"--debug"}}.Args()
	want := []string{"--debug", CreateRole, "--id", id, "--name", "web", "--", "busybox"}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("Args() = %q, want %q", args, want)
	}
	if args := (CreateRequest{Image: "busybox"}).Args(); strings.Contains(strings.Join(args, " "), "--id") {
		t.Errorf("no ID: Args() = %q has --id", args)
	}
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{id, true},
		{strings.Repeat("f", 64), true},
		{strings.Repeat("F", 64), false},
		{id[:63], false},
		{id + "0", false},
		{"../" + id[3:], false},
		{"", false},
	} {
		if got := ValidID(tc.id); got != tc.ok {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}

func TestStoredAsTyped(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"localhost/bench-bb:1", true},
		{"docker.io/library/alpine:3.20", true},
		{"127.0.0.1:5000/bb:store", true},
		{"quay.io/a/b/c:v1.2", true},
		{"localhost:5000/x:y", true},
		{"alpine", false},
		{"alpine:3.20", false},
		{"library/alpine:3", false},
		{"docker.io/library/alpine", false},
		{"localhost:5000/x", false},
		{"quay.io/x:", false},
		{"quay.io/x@sha256:0123456789012345678901234567890123456789012345678901234567890123", false},
		{"quay.io/x:1@sha256:0123456789012345678901234567890123456789012345678901234567890123", false},
		{"0123456789ab", false},
		{"localhost/", false},
	} {
		if got := StoredAsTyped(c.name); got != c.want {
			t.Errorf("StoredAsTyped(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestCreateHelper: sandy-create serves names in the store's form when
// it is installed beside sandy-store; everything else keeps the helper
// storeHelper chose.
func TestCreateHelper(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, StoreName)
	image := filepath.Join(dir, Name)
	for _, p := range []string{store, image} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := createHelper(store, "localhost/bb:1"); got != store {
		t.Errorf("no sandy-create installed: got %s, want %s", got, store)
	}
	create := filepath.Join(dir, CreateName)
	if err := os.WriteFile(create, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ prog, image, want string }{
		{store, "localhost/bb:1", create},
		{store, "bb:1", store},
		{store, "localhost/bb", store},
		{image, "localhost/bb:1", image}, // no sandy-store: an older install
	} {
		if got := createHelper(c.prog, c.image); got != c.want {
			t.Errorf("createHelper(%s, %q) = %s, want %s", filepath.Base(c.prog), c.image, got, c.want)
		}
	}
}
