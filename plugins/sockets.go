package plugins

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sftkit/sft/internal/proc"
)

// socketDirPrefix names a Pool's socket directory in $TMPDIR:
// sft-plugins-<pid of the host>-<random>.
const socketDirPrefix = "sft-plugins-"

// makeSocketDir creates the Pool's private (0700) directory for its
// plugins' unix sockets (go-plugin's default is a file in $TMPDIR per start,
// left behind by every plugin that is killed rather than stopped). Each
// plugin process gets a subdirectory, removed when the process is reaped;
// Close removes the whole directory. A host that was killed cannot remove
// its own: directories of earlier hosts whose pid is dead (and that belong
// to this user) are removed here.
func makeSocketDir(logger *slog.Logger) (string, error) {
	removeStaleSocketDirs(os.TempDir(), logger)
	dir, err := os.MkdirTemp("", socketDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("plugins: socket directory: %w", err)
	}
	return dir, nil
}

// removeStaleSocketDirs removes the socket directories in tmp whose owner
// pid is dead. A live pid (even one reused by a stranger) keeps its
// directory: a leftover is harmless, removing a live host's sockets is not.
func removeStaleSocketDirs(tmp string, logger *slog.Logger) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), socketDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || proc.Alive(pid) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		if err := os.RemoveAll(path); err != nil {
			logger.Warn("cannot remove a dead host's plugin socket directory", "dir", path, "error", err)
			continue
		}
		logger.Info("removed a dead host's plugin socket directory", "dir", path, "host_pid", pid)
	}
}
