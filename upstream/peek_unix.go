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

// sendAndWait writes a bodiless request's head and waits until the answer can be read, in one
// RawConn.Read: the callback's first call writes the head, after the read has reset the
// poller's readiness for this connection, so the answer's arrival cannot be missed; its second
// call, once the poller reports the connection readable, ends the wait. The first read of the
// answer then finds it there, where a Write and then a Read would usually cost a read that
// returns EAGAIN first: one system call fewer per request.
//
// It returns how much of head was written; the rest, if any (a full socket buffer, an error), is
// the caller's to write the usual way, which meets the error again and reports it as net.Conn
// does. The wait ends at the read deadline, which the caller must have set, and which must be a
// poll deadline before any header deadline (bytes that arrived unasked between get's peek and this
// read's reset, or an upstream's close then, wake nobody: they wait for the answer's bytes or the
// poll deadline, and slowRead then reads them as a plain Read would have; a header deadline would
// end the round trip with ErrHeaderTimeout instead), or when the connection is closed; the reads
// that follow see why. It is skipped when bytes are already buffered or there is no
// raw connection.
func (c *conn) sendAndWait(head []byte) int {
	if c.rc == nil || c.br.Buffered() > 0 {
		return 0
	}
	c.send, c.sendN, c.sendDone = head, 0, false
	_ = c.rc.Read(c.sendFn)
	c.send = nil
	return c.sendN
}

func (c *conn) sendThenWait(fd uintptr) bool {
	if c.sendDone {
		return true // readable (or woken): the reads that follow take it from here
	}
	c.sendDone = true
	for c.sendN < len(c.send) {
		n, err := syscall.Write(int(fd), c.send[c.sendN:])
		if n > 0 {
			c.sendN += n
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return true // EAGAIN or an error: left to the caller's Write
		}
	}
	return false
}
