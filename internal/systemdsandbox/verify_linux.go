package systemdsandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/PID/mountinfo.
type mountEntry struct {
	Point    string   // mount point, relative to the process's root
	Options  []string // per-mount options ("ro", "nosuid", ...)
	Optional []string // optional fields ("shared:1", "master:2")
	FSType   string
}

func (m mountEntry) readOnly() bool {
	for _, o := range m.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

func (m mountEntry) shared() bool {
	for _, o := range m.Optional {
		if strings.HasPrefix(o, "shared:") {
			return true
		}
	}
	return false
}

// parseMountinfo parses the format of proc(5) /proc/PID/mountinfo.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("mountinfo: malformed line %q", sc.Text())
		}
		out = append(out, mountEntry{
			Point:    unescapeMount(f[4]),
			Options:  strings.Split(f[5], ","),
			Optional: f[6:sep],
			FSType:   f[sep+1],
		})
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writableMounts are the only mounts allowed to be writable in the sandbox,
// with the file system types each may have.
var writableMounts = map[string][]string{
	"/run":             {"tmpfs"},
	"/tmp":             {"tmpfs"},
	"/var/tmp":         {"tmpfs"},
	"/var/log":         {"tmpfs"},
	"/var/lib/systemd": {"tmpfs"},
	"/root":            {"tmpfs"},
	"/dev/shm":         {"tmpfs"},
	"/proc":            {"proc"},
	"/sys/fs/cgroup":   {"cgroup2"},
	"/dev/console":     {"devpts", "devtmpfs"}, // the sandbox's pty, or /dev/null
	"/dev/kmsg":        {"devtmpfs"},           // /dev/null bound over it
}

// checkMounts verifies a sandbox's mount table (as the sandbox sees it):
// the root is read-only, every mount but the writable list is read-only,
// the writable ones have the expected type, and no mount is shared (a shared
// mount would propagate mounts to the host).
func checkMounts(entries []mountEntry) error {
	var errs []error
	sawRoot := false
	// Mounts stack: only the last (topmost) mount at a point is visible and
	// may be one of the writable ones; those it hides must be read-only too.
	top := make(map[string]int)
	for i, m := range entries {
		top[m.Point] = i
	}
	for i, m := range entries {
		if m.shared() {
			errs = append(errs, fmt.Errorf("mount %s is shared (%s): mounts would propagate", m.Point, strings.Join(m.Optional, " ")))
		}
		if m.Point == "/" {
			sawRoot = true
		}
		if want, ok := writableMounts[m.Point]; ok && top[m.Point] == i {
			if !slices.Contains(want, m.FSType) {
				errs = append(errs, fmt.Errorf("mount %s is %s, want a fresh %s", m.Point, m.FSType, strings.Join(want, " or ")))
			}
			continue
		}
		if !m.readOnly() {
			errs = append(errs, fmt.Errorf("mount %s (%s) is writable", m.Point, m.FSType))
		}
	}
	if !sawRoot {
		errs = append(errs, errors.New("no mount at /"))
	}
	for p := range writableMounts {
		if p == "/dev/console" || p == "/dev/kmsg" {
			continue // only where the host has them
		}
		found := false
		for _, m := range entries {
			if m.Point == p {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("no fresh mount at %s", p))
		}
	}
	return errors.Join(errs...)
}

// probeDirs must refuse new files with EROFS inside the sandbox.
var probeDirs = []string{"/", "/etc", "/usr", "/var", "/var/lib", "/home", "/opt", "/srv", "/work", "/mnt"}

// checkReadOnly tries to create a file in each probe dir under root (""
// inside the sandbox, "/proc/PID/root" from outside) and to write
// /proc/sys/fs/file-max; each must fail with EROFS.
func checkReadOnly(root, procRoot string) error {
	var errs []error
	for _, d := range probeDirs {
		dir := filepath.Join(root, d)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf(".sft-sandbox-probe-%d", os.Getpid()))
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(fd)
			os.Remove(p)
			errs = append(errs, fmt.Errorf("%s is writable", d))
			continue
		}
		if !errors.Is(err, syscall.EROFS) {
			errs = append(errs, fmt.Errorf("probe %s: want EROFS, got %w", d, err))
		}
	}
	if procRoot != "" {
		p := filepath.Join(procRoot, "sys/fs/file-max")
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
			errs = append(errs, errors.New("/proc/sys is writable"))
		} else if !errors.Is(err, syscall.EROFS) {
			errs = append(errs, fmt.Errorf("probe /proc/sys: want EROFS, got %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkTmp verifies that dir is an empty tmpfs that does not show the
// canary (so it is not the host's /tmp).
func checkTmp(dir, canary string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("%s is not a tmpfs (type %#x)", dir, st.Type)
	}
	if _, err := os.Lstat(filepath.Join(dir, canary)); err == nil {
		return fmt.Errorf("%s shows the host's canary %s: it is the host's /tmp", dir, canary)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) != 0 {
		return fmt.Errorf("%s is not empty (%d entries)", dir, len(ents))
	}
	return nil
}
