package lifecycle

// cleanups is a stack of undo functions run in reverse order unless
// released (gVisor's pkg/cleanup).
type cleanups struct{ fns []func() }

func (c *cleanups) add(fn func()) { c.fns = append(c.fns, fn) }

// run undoes everything added so far, newest first.
func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// release forgets the undo functions: the work is kept.
func (c *cleanups) release() { c.fns = nil }
