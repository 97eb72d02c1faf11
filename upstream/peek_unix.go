//go:build unix

package upstream

import "syscall"

// quiet reports whether an idle connection has nothing to read and no error pending: a
// non-blocking MSG_PEEK, one system call. EOF (the upstream closed it), a reset, or unsolicited
// bytes all disqualify the connection. The peek goes through RawConn.Control, not Read: a read
// deadline left on the idle connection (a poll or header deadline, see conn.stop) is no reason to
// drop it, and the next round trip sets its own.
func (c *conn) quiet() bool {
	if c.rc == nil {
		return c.br.Buffered() == 0
	}
	c.peekN, c.peekErr = 0, nil
	if err := c.rc.Control(c.peekFn); err != nil {
		return false
	}
	return c.peekN < 0 && (c.peekErr == syscall.EAGAIN || c.peekErr == syscall.EWOULDBLOCK)
}

func (c *conn) peek(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err != nil {
		n = -1
	}
	c.peekN, c.peekErr = n, err
}
