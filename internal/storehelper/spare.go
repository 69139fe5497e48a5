//go:build containers_image_openpgp

package storehelper

import (
	"os"
	"strconv"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/spare"
)

// linger is the spare's life (internal/spare has the protocol,
// imagehelper/spare.go sandy's side): after the session of g, the
// helper waits in g.spare for the next run's request, serves it as if it
// had been started with its arguments, and waits again, until Linger()
// passes without one, another helper holds the place, or a request says
// quit.
func (p Program) linger(g *Env) {
	idle := spare.Linger()
	if idle <= 0 {
		return
	}
	for {
		// Nothing of the last session's stays open: its caller's
		// stderr (a pipe that out=$(sandy run ...) waits on), its pipes.
		if err := spare.QuietStdio(); err != nil {
			return
		}
		g.takeSparePlace()
		// The removal the last session did is finished: the lock every
		// helper verb waits for goes now (a fresh helper's goes with
		// its exit), once the spare is in place, so that what waited
		// for it (rmi, system migrate) sees the spare too.
		if g.removals != nil {
			g.removals.Close()
			g.removals = nil
		}
		l := g.place
		if l == nil {
			return
		}
		me, err := spare.Me()
		if err != nil {
			return
		}
		// Idle, it holds no directory of the user's busy.
		_ = os.Chdir("/")
		conn, ok := l.Accept(idle)
		if !ok {
			return
		}
		s, quit := spare.Take(conn, me.Cwd)
		if quit {
			return
		}
		next := &Env{spares: true}
		if s != nil {
			next = p.serve(s)
		}
		next.spare = g.spare
		g = next
	}
}

// takeSparePlace takes the place of the spare of this helper's key in
// g.spare, if it is free and spares are on; g.place says whether it did.
func (g *Env) takeSparePlace() {
	if g.place != nil || g.spare == "" || spare.Linger() <= 0 {
		return
	}
	me, err := spare.Me()
	if err != nil {
		return
	}
	g.place, _ = spare.Listen(g.spare, me.Key)
}

// serve runs the request s (its stdio on 0-2 already) and tells sandy
// how it ended: the verb's Env (a spare again after it, or nil state).
func (p Program) serve(s *spare.Served) *Env {
	for _, f := range s.Files {
		f.Close() // a helper takes its stdio only
	}
	code, g := p.main(s.Args, true)
	msg := imagehelper.SpareExit + strconv.Itoa(code)
	if code == codeHandOver {
		msg = imagehelper.SpareHandOver
	}
	s.Done(msg)
	if g == nil {
		g = &Env{spares: true}
	}
	return g
}
