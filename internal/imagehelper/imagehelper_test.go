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
