package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/sftkit/sft/internal/proc"
)

// pprofEnv names the directory where the plugin process writes the address
// of its profile control server (set by the host for -pprof).
const pprofEnv = "SCALEBENCH_PPROF_DIR"

// pprofStartEnv names a file into which a plugin process started while it
// is set writes a CPU profile from its first instant (the crash phase
// profiles the relaunched plugin); /stop ends it.
const pprofStartEnv = "SCALEBENCH_PPROF_START"

// servePprof starts, in the plugin process, a loopback HTTP server:
// /start?file=F starts a CPU profile into F, /stop?heap=F stops it and
// writes a heap profile into F (both for -pprof), /mem summarizes the
// memory, /spawn returns proc.SpawnStats. Its address goes to
// $SCALEBENCH_PPROF_DIR/plugin-PID.addr.
func servePprof() {
	dir := os.Getenv(pprofEnv)
	if dir == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	var mu sync.Mutex
	var cpu *os.File
	if f := os.Getenv(pprofStartEnv); f != "" {
		cpu, _ = startCPU(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		stop, err := startCPU(r.URL.Query().Get("file"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cpu = stop
	})
	mux.HandleFunc("/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if err := stopCPU(cpu, r.URL.Query().Get("heap")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		cpu = nil
	})
	mux.HandleFunc("/mem", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(memSummary())) })
	mux.HandleFunc("/spawn", func(w http.ResponseWriter, r *http.Request) {
		n, cpu := proc.SpawnStats()
		fmt.Fprintf(w, "%d %d", n, int64(cpu))
	})
	go func() { _ = http.Serve(l, mux) }()
	_ = os.WriteFile(filepath.Join(dir, "plugin-"+strconv.Itoa(os.Getpid())+".addr"), []byte(l.Addr().String()), 0o600)
}

func startCPU(file string) (*os.File, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func stopCPU(f *os.File, heap string) error {
	if f == nil {
		return errors.New("no CPU profile running")
	}
	pprof.StopCPUProfile()
	err := f.Close()
	runtime.GC()
	h, herr := os.Create(heap)
	if herr != nil {
		return errors.Join(err, herr)
	}
	defer h.Close()
	return errors.Join(err, pprof.Lookup("heap").WriteTo(h, 0))
}

// profiler profiles the host (this process) and the plugin (pid, 0: none;
// nextPlugin: the plugin started next, from its start, see attach)
// between start and stop: DIR/TAG-{host,plugin}-{cpu,heap}.pprof. Without
// -pprof it does nothing.
type profiler struct {
	tag    string
	plugin string // the plugin's control address
	cpu    *os.File
}

func startProfiles(tag string, pid int) (*profiler, error) {
	if pprofDir == "" {
		return &profiler{}, nil
	}
	p := &profiler{tag: filepath.Join(pprofDir, tag)}
	if pid == nextPlugin {
		os.Setenv(pprofStartEnv, p.tag+"-plugin-cpu.pprof")
	} else if pid != 0 {
		addr, err := os.ReadFile(filepath.Join(pprofDir, "plugin-"+strconv.Itoa(pid)+".addr"))
		if err != nil {
			return nil, fmt.Errorf("plugin profile server: %w", err)
		}
		p.plugin = string(addr)
		if err := p.call("/start?file=" + p.tag + "-plugin-cpu.pprof"); err != nil {
			return nil, err
		}
	}
	f, err := startCPU(p.tag + "-host-cpu.pprof")
	if err != nil {
		return nil, err
	}
	p.cpu = f
	return p, nil
}

func (p *profiler) call(path string) error {
	resp, err := http.Get("http://" + p.plugin + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("plugin profile server: %s: %s", path, resp.Status)
	}
	return nil
}

// nextPlugin as startProfiles' pid profiles the plugin process started
// next from its first instant (pprofStartEnv); attach names it once it
// runs.
const nextPlugin = -1

// attach names the plugin process whose profile started with it.
func (p *profiler) attach(pid int) error {
	if p.cpu == nil {
		return nil
	}
	os.Unsetenv(pprofStartEnv)
	addr, err := os.ReadFile(filepath.Join(pprofDir, "plugin-"+strconv.Itoa(pid)+".addr"))
	if err != nil {
		return fmt.Errorf("plugin profile server: %w", err)
	}
	p.plugin = string(addr)
	return nil
}

func (p *profiler) stop() error {
	if p.cpu == nil {
		return nil
	}
	err := stopCPU(p.cpu, p.tag+"-host-heap.pprof")
	if p.plugin != "" {
		err = errors.Join(err, p.call("/stop?heap="+p.tag+"-plugin-heap.pprof"))
	}
	return err
}

// memSummary says where a process's memory is: Go heap in use, heap held
// by the runtime but free, released to the OS, goroutine stacks, other
// runtime structures, and the number of goroutines.
func memSummary() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("heap in use %.1f MB, heap idle %.1f MB (released %.1f), stacks %.1f MB, other runtime %.1f MB, %d goroutines, %d GCs",
		mb(ms.HeapInuse), mb(ms.HeapIdle), mb(ms.HeapReleased), mb(ms.StackSys), mb(ms.MSpanSys+ms.MCacheSys+ms.BuckHashSys+ms.GCSys+ms.OtherSys),
		runtime.NumGoroutine(), ms.NumGC)
}

// spawnStats is proc.SpawnStats of process pid (this one, or the plugin
// through its control server): starts run by the spawner threads and their
// CPU.
func spawnStats(pid int) (int64, time.Duration) {
	if pid == os.Getpid() || pid == 0 {
		return proc.SpawnStats()
	}
	addr, err := os.ReadFile(filepath.Join(os.Getenv(pprofEnv), "plugin-"+strconv.Itoa(pid)+".addr"))
	if err != nil {
		return 0, 0
	}
	resp, err := http.Get("http://" + string(addr) + "/spawn")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var n, cpu int64
	_, _ = fmt.Fscan(resp.Body, &n, &cpu)
	return n, time.Duration(cpu)
}

// pluginMem is the plugin's memSummary ("" without -pprof).
func pluginMem(pid int) string {
	if pprofDir == "" || pid == 0 {
		return ""
	}
	addr, err := os.ReadFile(filepath.Join(pprofDir, "plugin-"+strconv.Itoa(pid)+".addr"))
	if err != nil {
		return ""
	}
	resp, err := http.Get("http://" + string(addr) + "/mem")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
