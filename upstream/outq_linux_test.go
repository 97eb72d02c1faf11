package upstream

import (
	"net"

	"golang.org/x/sys/unix"
)

// sentAndAcked reports whether everything written on c has been acknowledged by the peer (its send
// queue is empty), so the bytes are in the peer's receive buffer.
func sentAndAcked(c net.Conn) bool {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return false
	}
	n := -1
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	return n == 0
}
