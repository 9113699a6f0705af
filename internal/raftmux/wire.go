package raftmux

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The handshake opens every connection, inside TLS when TLS is on. The
// dialer writes a 13-byte header:
//
//	"CLVR" | version (1 byte) | shard id (8 bytes, big-endian)
//
// Version 1 opens a connection of one shard, which carries hashicorp/raft's
// NetworkTransport protocol. Version 2 (shard id 0) opens a multiplexed
// connection, which carries the frames of every shard (see frame.go). A
// node that predates version 2 answers it with status 3 (bad header).
//
// and the acceptor answers with one status byte. Status 2 (refused) is
// followed by the Guard's reason: a 2-byte big-endian length, at most
// maxReasonLen, then that many bytes of text. Raft's own bytes flow only
// after status 0; on any other status the acceptor closes the connection.
const (
	magic           = "CLVR"
	protocolVersion = 1
	muxVersion      = 2
	headerLen       = len(magic) + 1 + 8
	maxReasonLen    = 512
)

type status byte

const (
	statusOK           status = 0
	statusUnknownShard status = 1
	statusRefused      status = 2
	statusBadHeader    status = 3
)

func encodeHeader(version byte, shard uint64) [headerLen]byte {
	var h [headerLen]byte
	copy(h[:], magic)
	h[len(magic)] = version
	binary.BigEndian.PutUint64(h[len(magic)+1:], shard)
	return h
}

// decodeHeader returns the version and shard of a header, or an error
// wrapping ErrBadHeader. maxVersion is the highest version accepted.
func decodeHeader(h [headerLen]byte, maxVersion byte) (byte, uint64, error) {
	if string(h[:len(magic)]) != magic {
		return 0, 0, fmt.Errorf("%w: bad magic %x", ErrBadHeader, h[:len(magic)])
	}
	v := h[len(magic)]
	if v < protocolVersion || v > maxVersion {
		return 0, 0, fmt.Errorf("%w: protocol version %d, want %d to %d", ErrBadHeader, v, protocolVersion, maxVersion)
	}
	shard := binary.BigEndian.Uint64(h[len(magic)+1:])
	if v == muxVersion && shard != 0 {
		return 0, 0, fmt.Errorf("%w: multiplexed connection names shard %d", ErrBadHeader, shard)
	}
	return v, shard, nil
}

func writeStatus(w io.Writer, s status) error {
	_, err := w.Write([]byte{byte(s)})
	return err
}

// writeRefusal writes status 2 and the reason, cut to maxReasonLen bytes.
func writeRefusal(w io.Writer, reason string) error {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	buf := make([]byte, 3, 3+len(reason))
	buf[0] = byte(statusRefused)
	binary.BigEndian.PutUint16(buf[1:], uint16(len(reason)))
	buf = append(buf, reason...)
	_, err := w.Write(buf)
	return err
}

// readReply reads the acceptor's answer. It returns nil for status 0 and an
// error wrapping ErrUnknownShard, ErrRefused, ErrBadHeader or ErrHandshake
// otherwise.
func readReply(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("%w: read status: %w", ErrHandshake, err)
	}
	switch status(b[0]) {
	case statusOK:
		return nil
	case statusUnknownShard:
		return ErrUnknownShard
	case statusBadHeader:
		return fmt.Errorf("%w (rejected by peer)", ErrBadHeader)
	case statusRefused:
		reason, err := readReason(r)
		if err != nil {
			return fmt.Errorf("%w (reason unreadable: %w)", ErrRefused, err)
		}
		return fmt.Errorf("%w: %q", ErrRefused, reason)
	default:
		return fmt.Errorf("%w: unknown status %d", ErrHandshake, b[0])
	}
}

func readReason(r io.Reader) (string, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	size := int(binary.BigEndian.Uint16(n[:]))
	if size > maxReasonLen {
		return "", fmt.Errorf("%w: reason of %d bytes exceeds %d", ErrHandshake, size, maxReasonLen)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}
