//go:build !unix

package upstream

// quiet cannot peek without blocking here; it checks what is already buffered.
func (c *conn) quiet() bool { return c.br.Buffered() == 0 }

func (c *conn) peek(uintptr) {}

// sendAndWait leaves the head to the caller's Write here.
func (c *conn) sendAndWait([]byte) int { return 0 }

func (c *conn) sendThenWait(uintptr) bool { return true }
