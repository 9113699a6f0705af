package gossiptls

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Connection types: the first byte a dialer writes inside TLS.
const (
	typePacket byte = 'p'
	typeStream byte = 's'
)

// frameHeaderLen is the size of a packet's length prefix (big-endian uint32).
const frameHeaderLen = 4

// writeFrame appends one length-prefixed packet to w.
func writeFrame(w *bufio.Writer, b []byte) error {
	if len(b) == 0 || len(b) > MaxPacketSize {
		return fmt.Errorf("%w: %d bytes", ErrPacketSize, len(b))
	}
	var hdr [frameHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// errIdle reports a packet connection that ended cleanly between packets:
// the peer closed it or it stayed idle past its deadline.
var errIdle = errors.New("gossiptls: packet connection ended")

// readFrame reads one length-prefixed packet from conn. Its first byte must
// arrive within idle, and the rest of it within body after that. An EOF or
// timeout before the first byte returns errIdle; anything else that is not a
// whole, well-sized packet returns an error wrapping ErrProtocol (and
// ErrPacketSize for a bad length).
func readFrame(conn net.Conn, idle, body time.Duration) ([]byte, error) {
	var hdr [frameHeaderLen]byte
	if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(conn, hdr[:1]); err != nil {
		if errors.Is(err, io.EOF) || isTimeout(err) {
			return nil, errIdle
		}
		return nil, fmt.Errorf("%w: packet length: %w", ErrProtocol, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(body)); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(conn, hdr[1:]); err != nil {
		return nil, fmt.Errorf("%w: packet length: %w", ErrProtocol, err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size == 0 || size > MaxPacketSize {
		return nil, fmt.Errorf("%w: %w: length %d", ErrProtocol, ErrPacketSize, size)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, fmt.Errorf("%w: packet of %d bytes: %w", ErrProtocol, size, err)
	}
	return buf, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
