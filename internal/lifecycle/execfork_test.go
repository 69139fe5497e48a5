package lifecycle

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// stdioFiles: files pass as they are, none (or a nil *os.File) is
// /dev/null, anything else sends exec to the fallback.
func TestStdioFiles(t *testing.T) {
	var undo cleanups
	defer undo.run()
	var nilFile *os.File
	files, reason, err := stdioFiles(&ExecOptions{Stdin: nilFile, Stdout: os.Stdout}, &undo)
	if err != nil || reason != "" || len(files) != 3 {
		t.Fatalf("files %v, reason %q, err %v", files, reason, err)
	}
	if files[1] != os.Stdout || files[0].Name() != os.DevNull || files[2].Name() != os.DevNull {
		t.Errorf("files %v %v %v, want /dev/null, stdout, /dev/null", files[0].Name(), files[1].Name(), files[2].Name())
	}
	_, reason, err = stdioFiles(&ExecOptions{Stdin: strings.NewReader("x"), Stdout: &bytes.Buffer{}}, &undo)
	if err != nil || reason != "stdio that is not a file" {
		t.Errorf("a reader: reason %q, err %v", reason, err)
	}
}
