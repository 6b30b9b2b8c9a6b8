package postgres

import (
	"bufio"
	"context"
	"net"
	"time"
)

// readBufferSize is the read buffer under the driver's own 4 KiB one.
// Replaying $all moves hundreds of megabytes of ~1 KiB rows; through 4 KiB
// reads that is one system call per few rows, and the calls were the
// largest single cost of a replay's CPU. With 64 KiB most of the driver's
// reads are served from memory.
const readBufferSize = 64 << 10

// bufferedDialer is lib/pq's default dialer with a larger read buffer on
// each connection.
type bufferedDialer struct{ d net.Dialer }

func (b bufferedDialer) Dial(network, address string) (net.Conn, error) {
	return b.DialContext(context.Background(), network, address)
}

func (b bufferedDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return b.DialContext(ctx, network, address)
}

func (b bufferedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := b.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
}

// bufferedConn reads through r; everything else is the connection's.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
