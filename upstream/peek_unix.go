//go:build unix

package upstream

import "syscall"

// quiet reports whether an idle connection has nothing to read and no error pending: a
// non-blocking MSG_PEEK, one system call. EOF (the upstream closed it), a reset, or unsolicited
// bytes all disqualify the connection.
func (c *conn) quiet() bool {
	if c.rc == nil {
		return c.br.Buffered() == 0
	}
	c.peekN, c.peekErr = 0, nil
	if err := c.rc.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekN < 0 && (c.peekErr == syscall.EAGAIN || c.peekErr == syscall.EWOULDBLOCK)
}

func (c *conn) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err != nil {
		n = -1
	}
	c.peekN, c.peekErr = n, err
	return true
}
