package server

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// diskPoll is how often the node reads its file system's free space.
const diskPoll = 250 * time.Millisecond

// diskLoop keeps s.diskFree current (see Config.MinFreeDisk).
func (s *Server) diskLoop(ctx context.Context) {
	tick := time.NewTicker(diskPoll)
	defer tick.Stop()
	for {
		s.readDiskFree()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readDiskFree stores the bytes available to the node in its data
// directory's file system; -1 when it cannot be read (the check then lets
// writes through: an unreadable statfs says nothing about space).
func (s *Server) readDiskFree() {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.cfg.DataDir, &st); err != nil {
		s.diskFree.Store(-1)
		return
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	was := s.diskFree.Swap(free)
	low := s.cfg.MinFreeDisk > 0 && free < s.cfg.MinFreeDisk
	wasLow := s.cfg.MinFreeDisk > 0 && was >= 0 && was < s.cfg.MinFreeDisk
	switch {
	case low && !wasLow:
		s.logger.Error("disk below its free-space reserve: refusing writes until space is freed (reads go on)",
			"free_mib", free>>20, "reserve_mib", s.cfg.MinFreeDisk>>20, "dir", s.cfg.DataDir)
	case !low && wasLow:
		s.logger.Info("disk space back above the reserve: accepting writes", "free_mib", free>>20)
	}
}

// diskRefusal returns ErrDiskFull while the data directory's file system is
// below the reserve. A write refused here never reached Raft.
func (s *Server) diskRefusal() error {
	if s.cfg.MinFreeDisk <= 0 {
		return nil
	}
	free := s.diskFree.Load()
	if free < 0 || free >= s.cfg.MinFreeDisk {
		return nil
	}
	return fmt.Errorf("%w: node %s has %d MiB free in %s, below its reserve of %d MiB: writes are refused until space is freed; reads go on",
		ErrDiskFull, s.cfg.NodeID, free>>20, s.cfg.DataDir, s.cfg.MinFreeDisk>>20)
}
