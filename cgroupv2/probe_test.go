package cgroupv2

import "testing"

func TestBusAnswers(t *testing.T) {
	if got := busAnswers("unix:path=" + SystemManagerSocket); got != "the system's systemd answers at unix:path=/run/systemd/private" {
		t.Errorf("root's: %q", got)
	}
	if got := busAnswers("unix:path=/run/user/1000/bus"); got != "the user session bus answers at unix:path=/run/user/1000/bus" {
		t.Errorf("a user's: %q", got)
	}
}
