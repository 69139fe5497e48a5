package imagehelper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/spare"
	"github.com/sandy-rt/sandy/internal/state"
)

// A spare image helper is the sandy-create of a `run IMAGE` that has
// finished its container's session and stays, idle, for the next one
// (internal/spare has the protocol): its runtime, its package inits and
// the storage library's first-use work are done, so the next run's
// storage container is made without a helper's start-up (≈5 ms of a
// 16 ms `run --rm IMAGE true` here).
//
//	sandy run IMAGE ──spare.Dial── the helper's arguments, environment
//	    and cwd, and its stdin, stdout and stderr
//	    then:  the --hold protocol on those pipes, as with a started helper
//	    last:  "exit N" (or "handover": start sandy-store, as the exec of
//	           a started sandy-create would)
//
// Besides the spare's own checks (internal/spare), the spare must be in
// the namespace of the user's pause process, which the container's init
// joins. Not for root, whose helper runs in the host's user namespace
// and shares nothing to keep.

// The spare helper's final words, after spare's "y".
const (
	SpareExit     = "exit "
	SpareHandOver = "handover"
)

// errSpareHandOver: the spare would have handed the verb to sandy-store.
var errSpareHandOver = errors.New("the spare hands the verb over")

// spareProc is a helper session served by a spare.
type spareProc struct{ p *spare.Proc }

func (s spareProc) wait() (int, error) {
	msg, err := s.p.Wait()
	if err != nil {
		return -1, err
	}
	if msg == SpareHandOver {
		return -1, errSpareHandOver
	}
	code, err := strconv.Atoi(strings.TrimPrefix(msg, SpareExit))
	if err != nil || !strings.HasPrefix(msg, SpareExit) {
		return -1, fmt.Errorf("the spare helper %d said %q", s.p.Pid, msg)
	}
	return code, nil
}

func (s spareProc) signal(sig syscall.Signal) { s.p.Signal(sig) }

func (s spareProc) close() { s.p.Close() }

// dialSpare hands the helper's run of args to the spare made for exe and
// this process's environment and cwd, if one listens: nil, and why not,
// when none takes it (the caller starts a helper). stdio are the
// helper's stdin, stdout and stderr. A spare still removing the last
// run's container answers once it is done (as a helper would wait for
// that removal's lock); ctx ending first gives up with ctx's error (the
// caller starts no helper).
func dialSpare(ctx context.Context, exe *os.File, args []string, stdio [3]*os.File) (*spareProc, string, error) {
	if !spare.Enabled() {
		return nil, "no spares (root, or " + spare.EnvLinger + "=0)", nil
	}
	plan, err := idmap.Resolve(idmap.CallerRequest())
	if err != nil {
		return nil, err.Error(), nil
	}
	// The namespace the user's pause process holds now: what the record
	// names (StoreUserNS, which the init's own start calls, checks the
	// rest of it).
	rec, err := readPauseRecord(state.DefaultRoot())
	if err != nil {
		return nil, "no pause process: " + err.Error(), nil
	}
	if start, _, err := state.ProcStart(rec.Pid); err != nil || start != rec.Start {
		return nil, "the recorded pause process is gone", nil
	}
	fi, err := exe.Stat()
	if err != nil {
		return nil, err.Error(), nil
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err.Error(), nil
	}
	req := spare.Request{Args: args, Env: storeEnv(plan), Cwd: cwd, Stdio: []int{0, 1, 2}}
	p, why, err := spare.Dial(ctx, spare.Dir(), spare.Key(fi, req.Env, cwd), req, stdio[:], spare.SameUserNS(strconv.Itoa(rec.Pid)))
	if p == nil {
		return nil, why, err
	}
	return &spareProc{p}, "", nil
}
