package resourcetest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sftkit/sft/resource"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

// start runs fn in a goroutine and returns its result channel.
func start(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// result returns what ch holds now, failing if the call has not returned.
// Call it after synctest.Wait.
func result(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	default:
		t.Fatalf("%s has not returned", what)
		return nil
	}
}

func stillBlocked(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned %v; want it still blocked", what, err)
	default:
	}
}

func TestFakeUnscripted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := rt.NewFake("db")
	if f.Name() != "db" {
		t.Errorf("Name = %q", f.Name())
	}
	if err := f.LooksAlive(ctx); !errors.Is(err, rt.ErrNotOnline) {
		t.Errorf("LooksAlive before Online = %v, want ErrNotOnline", err)
	}
	if err := f.Online(ctx); err != nil || !f.Up() {
		t.Fatalf("Online = %v, Up = %v", err, f.Up())
	}
	if err := errors.Join(f.LooksAlive(ctx), f.IsAlive(ctx)); err != nil {
		t.Errorf("health while up: %v", err)
	}
	if err := f.Offline(ctx); err != nil || f.Up() {
		t.Errorf("Offline = %v, Up = %v", err, f.Up())
	}
	if err := f.IsAlive(ctx); !errors.Is(err, rt.ErrNotOnline) {
		t.Errorf("IsAlive after Offline = %v, want ErrNotOnline", err)
	}
	want := []rt.Method{rt.MethodLooksAlive, rt.MethodOnline, rt.MethodLooksAlive, rt.MethodIsAlive, rt.MethodOffline, rt.MethodIsAlive}
	if got := f.Methods(); !slices.Equal(got, want) {
		t.Errorf("Methods = %v, want %v", got, want)
	}
	if f.Calls(rt.MethodIsAlive) != 2 || f.Calls(rt.MethodTerminate) != 0 {
		t.Errorf("Calls(IsAlive) = %d, Calls(Terminate) = %d", f.Calls(rt.MethodIsAlive), f.Calls(rt.MethodTerminate))
	}
	if v := f.Violations(); len(v) > 0 {
		t.Errorf("Violations = %v", v)
	}
}

func TestFakeCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := rt.NewFake("x")
	for _, m := range []struct {
		name rt.Method
		fn   func(context.Context) error
	}{{rt.MethodOnline, f.Online}, {rt.MethodOffline, f.Offline}, {rt.MethodLooksAlive, f.LooksAlive}, {rt.MethodIsAlive, f.IsAlive}} {
		if err := m.fn(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with canceled ctx = %v, want context.Canceled", m.name, err)
		}
	}
	if f.Up() {
		t.Error("Up after Online with a canceled ctx")
	}
	// Terminate ignores a done ctx: it still takes the fake down.
	_ = f.Online(context.Background())
	if err := f.Terminate(ctx); err != nil || f.Up() {
		t.Errorf("Terminate(canceled) = %v, Up = %v; want nil, false", err, f.Up())
	}
}

func TestFakeFailNext(t *testing.T) {
	t.Parallel()
	errFull := errors.New("address in use")
	tests := []struct {
		name      string
		err       error
		wantIs    error
		wantClass resource.Class
	}{
		{"default", nil, rt.ErrInjected, resource.ClassTransient},
		{"node-local", resource.NodeLocal(errFull), errFull, resource.ClassNodeLocal},
		{"configuration", resource.ConfigError("address", "x", "bad"), resource.ErrConfiguration, resource.ClassConfiguration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			f := rt.NewFake("ip")
			f.FailNext(rt.MethodOnline, 2, tt.err)
			for i := range 2 {
				err := f.Online(ctx)
				if !errors.Is(err, tt.wantIs) || resource.ClassOf(err) != tt.wantClass {
					t.Fatalf("Online #%d = %v (class %v), want %v of class %v", i+1, err, resource.ClassOf(err), tt.wantIs, tt.wantClass)
				}
				if f.Up() {
					t.Fatalf("Up after failed Online #%d", i+1)
				}
			}
			if err := f.Online(ctx); err != nil || !f.Up() {
				t.Fatalf("third Online = %v, Up = %v; want nil, true", err, f.Up())
			}
			log := f.Log()
			if len(log) != 3 || log[0].Err == nil || log[2].Err != nil || !log[2].Returned {
				t.Errorf("Log = %+v", log)
			}
		})
	}
}

func TestFakeSetErrorAndAlive(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := rt.NewFake("app")
	if err := f.Online(ctx); err != nil {
		t.Fatal(err)
	}
	f.SetAlive(false)
	if err := f.LooksAlive(ctx); !errors.Is(err, rt.ErrNotAlive) {
		t.Errorf("LooksAlive after SetAlive(false) = %v", err)
	}
	if err := f.IsAlive(ctx); !errors.Is(err, rt.ErrNotAlive) {
		t.Errorf("IsAlive after SetAlive(false) = %v", err)
	}
	f.SetAlive(true)
	errDeep := errors.New("health endpoint 500")
	f.SetError(rt.MethodIsAlive, errDeep)
	if err := f.LooksAlive(ctx); err != nil {
		t.Errorf("LooksAlive with only IsAlive failing = %v", err)
	}
	for range 2 { // persistent, not once
		if err := f.IsAlive(ctx); !errors.Is(err, errDeep) {
			t.Errorf("IsAlive = %v, want %v", err, errDeep)
		}
	}
	f.SetError(rt.MethodIsAlive, nil)
	if err := f.IsAlive(ctx); err != nil {
		t.Errorf("IsAlive after clearing = %v", err)
	}
	// A failing Offline leaves the fake up; a failing Terminate does not.
	f.FailNext(rt.MethodOffline, 1, nil)
	f.FailNext(rt.MethodTerminate, 1, nil)
	if err := f.Offline(ctx); err == nil || !f.Up() {
		t.Errorf("failed Offline = %v, Up = %v; want error, true", err, f.Up())
	}
	if err := f.Terminate(ctx); !errors.Is(err, rt.ErrInjected) || f.Up() {
		t.Errorf("failed Terminate = %v, Up = %v; want ErrInjected, false", err, f.Up())
	}
}

func TestFakeBlockCancelable(t *testing.T) {
	t.Parallel()
	t.Run("ctx deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("slow")
			f.Block(rt.MethodOnline, 1, rt.Cancelable)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			t0 := time.Now()
			err := f.Online(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("blocked Online = %v, want DeadlineExceeded", err)
			}
			c := f.Log()[0]
			if !c.Start.Equal(t0) || c.End.Sub(c.Start) != 5*time.Second {
				t.Errorf("log times %v..%v, want the 5s of fake time from %v", c.Start, c.End, t0)
			}
			// Only the next call was blocked.
			if err := f.Online(t.Context()); err != nil {
				t.Errorf("second Online = %v", err)
			}
		})
	})
	t.Run("Terminate releases", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("slow")
			f.Block(rt.MethodOnline, 1, rt.Cancelable)
			res := start(func() error { return f.Online(t.Context()) })
			synctest.Wait()
			if f.Blocked(rt.MethodOnline) != 1 {
				t.Fatalf("Blocked = %d, want 1", f.Blocked(rt.MethodOnline))
			}
			if err := f.Terminate(t.Context()); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if err := result(t, res, "Online"); !errors.Is(err, rt.ErrTerminated) {
				t.Errorf("Online after Terminate = %v, want ErrTerminated", err)
			}
			if f.Up() || f.Blocked(rt.MethodOnline) != 0 {
				t.Errorf("Up = %v, Blocked = %d", f.Up(), f.Blocked(rt.MethodOnline))
			}
		})
	})
	t.Run("IgnoreTerminate", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("stubborn")
			if err := f.Online(t.Context()); err != nil {
				t.Fatal(err)
			}
			f.IgnoreTerminate(true)
			f.Block(rt.MethodOffline, 1, rt.Cancelable)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			res := start(func() error { return f.Offline(ctx) })
			synctest.Wait()
			if err := f.Terminate(t.Context()); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			stillBlocked(t, res, "Offline")
			if !f.Up() {
				t.Error("ignored Terminate took the fake down")
			}
			time.Sleep(time.Minute) // fake time: the ctx deadline passes
			synctest.Wait()
			if err := result(t, res, "Offline"); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Offline = %v, want DeadlineExceeded", err)
			}
			f.IgnoreTerminate(false)
			if err := f.Terminate(t.Context()); err != nil || f.Up() {
				t.Errorf("Terminate = %v, Up = %v", err, f.Up())
			}
		})
	})
	t.Run("Release", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("gated")
			f.Block(rt.MethodLooksAlive, -1, rt.Cancelable)
			r1 := start(func() error { return f.LooksAlive(t.Context()) })
			synctest.Wait()
			if n := f.Release(rt.MethodLooksAlive); n != 1 {
				t.Errorf("Release released %d calls, want 1", n)
			}
			synctest.Wait()
			// Released calls go on normally: not online, so ErrNotOnline.
			if err := result(t, r1, "LooksAlive"); !errors.Is(err, rt.ErrNotOnline) {
				t.Errorf("released LooksAlive = %v", err)
			}
			// Release cancelled the rest of the rule (n was -1).
			if err := f.LooksAlive(t.Context()); !errors.Is(err, rt.ErrNotOnline) {
				t.Errorf("LooksAlive after Release = %v", err)
			}
		})
	})
}

func TestFakeBlockDeadlock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := rt.NewFake("plugin")
		f.Block(rt.MethodIsAlive, 1, rt.Deadlock)
		if err := f.Online(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		res := start(func() error { return f.IsAlive(ctx) })
		time.Sleep(time.Hour) // far past the ctx deadline
		if err := f.Terminate(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		stillBlocked(t, res, "deadlocked IsAlive (after ctx end and Terminate)")
		// A deadlocked call does not hold the serialization lock.
		if err := f.Online(t.Context()); err != nil {
			t.Fatal(err)
		}
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("Violations = %v, want none (deadlocked calls are abandoned)", v)
		}
		if err := f.KillProcess("IsAlive deadlocked"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := result(t, res, "IsAlive"); !errors.Is(err, rt.ErrProcessKilled) {
			t.Errorf("IsAlive after KillProcess = %v, want ErrProcessKilled", err)
		}
		if f.Up() {
			t.Error("Up after KillProcess")
		}
		if k := f.Kills(); !slices.Equal(k, []string{"IsAlive deadlocked"}) {
			t.Errorf("Kills = %q", k)
		}
		log := f.Log()
		last := log[len(log)-1]
		if last.Method != rt.MethodKillProcess || last.Arg != "IsAlive deadlocked" {
			t.Errorf("last log entry = %+v", last)
		}
		// Release also ends a deadlock.
		f.Block(rt.MethodOffline, 1, rt.Deadlock)
		res = start(func() error { return f.Offline(t.Context()) })
		synctest.Wait()
		stillBlocked(t, res, "deadlocked Offline")
		f.Release(rt.MethodOffline)
		synctest.Wait()
		if err := result(t, res, "Offline"); err != nil {
			t.Errorf("released Offline = %v", err)
		}
	})
}

// progressRecorder collects ReportProgress messages with their fake time.
type progressRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (p *progressRecorder) ctx(parent context.Context, t0 time.Time) context.Context {
	return resource.WithProgress(parent, func(m string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.msgs = append(p.msgs, fmt.Sprintf("%v %s", time.Since(t0), m))
	})
}

func (p *progressRecorder) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

func TestFakeProgress(t *testing.T) {
	t.Parallel()
	t.Run("Step", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("svc")
			if f.Step(rt.MethodOnline) {
				t.Error("Step with nothing waiting returned true")
			}
			f.SetProgress(rt.MethodOnline, 2, 0)
			var p progressRecorder
			t0 := time.Now()
			res := start(func() error { return f.Online(p.ctx(t.Context(), t0)) })
			for i := range 2 {
				synctest.Wait()
				if len(p.get()) != i {
					t.Fatalf("progress before step %d: %q", i+1, p.get())
				}
				time.Sleep(time.Second)
				if !f.Step(rt.MethodOnline) {
					t.Fatalf("Step %d: nothing waiting", i+1)
				}
			}
			synctest.Wait()
			if err := result(t, res, "Online"); err != nil {
				t.Fatal(err)
			}
			want := []string{"1s Online step 1/2", "2s Online step 2/2"}
			if got := p.get(); !slices.Equal(got, want) {
				t.Errorf("progress = %q, want %q", got, want)
			}
		})
	})
	t.Run("every", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("svc")
			f.SetProgress(rt.MethodOffline, 3, 10*time.Second)
			var p progressRecorder
			if err := f.Offline(p.ctx(t.Context(), time.Now())); err != nil {
				t.Fatal(err)
			}
			want := []string{"10s Offline step 1/3", "20s Offline step 2/3", "30s Offline step 3/3"}
			if got := p.get(); !slices.Equal(got, want) {
				t.Errorf("progress = %q, want %q", got, want)
			}
		})
	})
	t.Run("Terminate while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := rt.NewFake("svc")
			f.SetProgress(rt.MethodOnline, 5, time.Minute)
			res := start(func() error { return f.Online(t.Context()) })
			synctest.Wait()
			if err := f.Terminate(t.Context()); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if err := result(t, res, "Online"); !errors.Is(err, rt.ErrTerminated) {
				t.Errorf("Online = %v, want ErrTerminated", err)
			}
		})
	})
}

func TestFakePushFailure(t *testing.T) {
	t.Parallel()
	f := rt.NewFake("proc")
	errExit := errors.New("process exited with status 1")
	if f.PushFailure(errExit) {
		t.Error("PushFailure without a handler returned true")
	}
	var got []error
	f.SetFailureHandler(func(err error) { got = append(got, err) })
	if !f.HasFailureHandler() {
		t.Error("HasFailureHandler = false")
	}
	if !f.PushFailure(errExit) || len(got) != 1 || got[0] != errExit || f.Pushed() != 1 {
		t.Errorf("pushed %v (Pushed %d), want [%v]", got, f.Pushed(), errExit)
	}
	f.SetFailureHandler(nil)
	if f.PushFailure(errExit) || len(got) != 1 {
		t.Error("PushFailure after removing the handler delivered")
	}
	log := f.Log()
	if len(log) != 2 || log[0].Arg != "func" || log[1].Arg != "nil" {
		t.Errorf("Log = %+v", log)
	}
}

func TestFakeViolations(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := rt.NewFake("v")
		f.Block(rt.MethodOnline, 1, rt.Cancelable)
		res := start(func() error { return f.Online(t.Context()) })
		synctest.Wait()
		_ = f.LooksAlive(t.Context()) // overlaps the blocked Online
		_ = f.Terminate(t.Context())  // Terminate may overlap: no violation
		synctest.Wait()
		<-res
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		_ = f.Offline(t.Context())
		_ = f.Close()
		v := strings.Join(f.Violations(), "\n")
		for _, want := range []string{"LooksAlive called while [Online] in flight", "Offline called after Close", "Close called twice"} {
			if !strings.Contains(v, want) {
				t.Errorf("Violations missing %q:\n%s", want, v)
			}
		}
		if strings.Contains(v, "Terminate") {
			t.Errorf("Terminate reported as a violation:\n%s", v)
		}
		if !f.Closed() || f.Calls(rt.MethodClose) != 2 {
			t.Errorf("Closed = %v, Calls(Close) = %d", f.Closed(), f.Calls(rt.MethodClose))
		}
	})
}

func TestFakeWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := rt.NewFake("w")
		done := start(func() error { return f.WaitCalls(t.Context(), rt.MethodLooksAlive, 2) })
		_ = f.LooksAlive(t.Context())
		synctest.Wait()
		stillBlocked(t, done, "WaitCalls after one call")
		_ = f.LooksAlive(t.Context())
		synctest.Wait()
		if err := result(t, done, "WaitCalls"); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := f.WaitBlocked(ctx, rt.MethodOnline); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitBlocked with nothing blocked = %v, want DeadlineExceeded", err)
		}
	})
}

func TestHidden(t *testing.T) {
	t.Parallel()
	all := rt.CapFailureReporter | rt.CapCloser | rt.CapProcessKiller
	for hide := rt.Capability(0); hide <= all; hide++ {
		t.Run(fmt.Sprint(int(hide)), func(t *testing.T) {
			t.Parallel()
			f := rt.NewFake("h")
			r := rt.Hidden(f, hide)
			_, fr := r.(resource.FailureReporter)
			_, cl := r.(resource.Closer)
			_, hk := r.(resource.ProcessKiller)
			if fr != (hide&rt.CapFailureReporter == 0) || cl != (hide&rt.CapCloser == 0) || hk != (hide&rt.CapProcessKiller == 0) {
				t.Errorf("hide %03b: FailureReporter %v, Closer %v, ProcessKiller %v", hide, fr, cl, hk)
			}
			if err := r.Online(t.Context()); err != nil || !f.Up() {
				t.Errorf("Online through the wrapper = %v, Up = %v", err, f.Up())
			}
		})
	}
}

func TestType(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	typ := rt.NewType("fake")
	typ.Script("web/vip", func(f *rt.Fake) { f.FailNext(rt.MethodOnline, 1, resource.NodeLocal(errors.New("in use"))) })
	var all []string
	typ.Script("", func(f *rt.Fake) { all = append(all, f.Name()) })
	typ.SetTiming(resource.Timing{PendingTimeout: 3 * time.Minute})

	reg, err := resource.NewRegistry(typ)
	if err != nil {
		t.Fatal(err)
	}
	r, err := reg.Open(ctx, "fake", resource.OpenRequest{Name: "web/vip"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Online(ctx); resource.ClassOf(err) != resource.ClassNodeLocal {
		t.Errorf("scripted Online = %v, want node-local", err)
	}
	if _, err := typ.Open(ctx, resource.OpenRequest{Name: "web/app"}); err != nil {
		t.Fatal(err)
	}
	if f := typ.Instance("web/vip"); f == nil || f != r {
		t.Errorf("Instance(web/vip) = %v, want the opened resource", f)
	}
	if typ.Instance("nope") != nil {
		t.Error("Instance of an unopened name is not nil")
	}
	if got := len(typ.Instances()); got != 2 || !slices.Equal(all, []string{"web/vip", "web/app"}) {
		t.Errorf("Instances = %d, catch-all script saw %q", got, all)
	}
	if err := typ.Instance("web/app").Online(ctx); err != nil {
		t.Errorf("unscripted instance Online = %v", err)
	}
	if got := typ.DefaultTiming().PendingTimeout; got != 3*time.Minute {
		t.Errorf("DefaultTiming().PendingTimeout = %v", got)
	}

	typ.Hide(rt.CapProcessKiller)
	r, err = typ.Open(ctx, resource.OpenRequest{Name: "hidden"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(resource.ProcessKiller); ok {
		t.Error("Hide(CapProcessKiller): still a ProcessKiller")
	}
	if _, ok := r.(resource.Closer); !ok {
		t.Error("Hide(CapProcessKiller): no longer a Closer")
	}

	errNoRoom := errors.New("no room")
	typ.SetOpenError(errNoRoom)
	if _, err := typ.Open(ctx, resource.OpenRequest{Name: "x"}); !errors.Is(err, errNoRoom) {
		t.Errorf("Open with SetOpenError = %v", err)
	}
}

func TestTypeProperties(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		props     resource.Properties
		wantErr   string // substring; "" means valid
		wantClass resource.Class
	}{
		{"empty", nil, "", 0},
		{"failures", resource.Properties{"online_failures": 2}, "", resource.ClassTransient},
		{"node-local", resource.Properties{"online_failures": 1, "error_class": "node-local"}, "", resource.ClassNodeLocal},
		{"configuration", resource.Properties{"online_failures": 1, "error_class": "configuration"}, "", resource.ClassConfiguration},
		{"unknown property", resource.Properties{"colour": "red"}, "colour", 0},
		{"bad class", resource.Properties{"error_class": "fatal"}, `error_class "fatal"`, 0},
		{"negative", resource.Properties{"online_failures": -1}, "online_failures -1", 0},
		{"wrong kind", resource.Properties{"online_failures": "two"}, `online_failures "two"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			typ := rt.NewType("fake")
			err := typ.Validate(ctx, tt.props)
			if typ.Validations() != 1 {
				t.Errorf("Validations = %d", typ.Validations())
			}
			_, openErr := typ.Open(ctx, resource.OpenRequest{Name: "r", Properties: tt.props})
			if tt.wantErr != "" {
				for _, e := range []error{err, openErr} {
					if !errors.Is(e, resource.ErrConfiguration) || !strings.Contains(fmt.Sprint(e), tt.wantErr) {
						t.Errorf("got %v, want a configuration error containing %q", e, tt.wantErr)
					}
				}
				return
			}
			if err != nil || openErr != nil {
				t.Fatalf("Validate = %v, Open = %v", err, openErr)
			}
			f := typ.Instance("r")
			n, _ := tt.props["online_failures"].(int)
			for i := range n {
				if err := f.Online(ctx); !errors.Is(err, rt.ErrInjected) || resource.ClassOf(err) != tt.wantClass {
					t.Fatalf("Online #%d = %v (class %v), want class %v", i+1, err, resource.ClassOf(err), tt.wantClass)
				}
			}
			if err := f.Online(ctx); err != nil {
				t.Errorf("Online after %d failures = %v", n, err)
			}
		})
	}
}

func TestTypeWaitInstance(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		typ := rt.NewType("fake")
		got := make(chan *rt.Fake, 1)
		go func() {
			f, _ := typ.WaitInstance(t.Context(), "late")
			got <- f
		}()
		_, _ = typ.Open(t.Context(), resource.OpenRequest{Name: "other"})
		synctest.Wait()
		if len(got) != 0 {
			t.Fatal("WaitInstance returned for another name")
		}
		_, _ = typ.Open(t.Context(), resource.OpenRequest{Name: "late"})
		synctest.Wait()
		if f := <-got; f == nil || f.Name() != "late" {
			t.Errorf("WaitInstance = %v", f)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := typ.WaitInstance(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitInstance(never) = %v", err)
		}
	})
}

func TestFakeReleaseAll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := rt.NewFake("r")
		f.Block(rt.MethodOnline, -1, rt.Deadlock)
		f.Block(rt.MethodTerminate, 1, rt.Deadlock)
		on := start(func() error { return f.Online(t.Context()) })
		term := start(func() error { return f.Terminate(t.Context()) })
		synctest.Wait()
		stillBlocked(t, on, "Online")
		stillBlocked(t, term, "Terminate")
		if n := f.ReleaseAll(); n != 2 {
			t.Errorf("ReleaseAll released %d calls, want 2", n)
		}
		synctest.Wait()
		if err := errors.Join(result(t, on, "Online"), result(t, term, "Terminate")); err != nil {
			t.Errorf("released calls: %v", err)
		}
		// The rules are gone too.
		if err := f.Online(t.Context()); err != nil || !f.Up() {
			t.Errorf("Online after ReleaseAll = %v, Up = %v", err, f.Up())
		}
	})
}

func TestFakeSetDelay(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := rt.NewFake("slow")
		f.SetDelay(rt.MethodOnline, 3*time.Second)
		t0 := time.Now()
		if err := f.Online(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d != 3*time.Second {
			t.Errorf("Online took %v of fake time, want 3s", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := f.Online(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Online with a 1s deadline = %v, want DeadlineExceeded", err)
		}
		// Release cuts a delay short.
		res := start(func() error { return f.Online(t.Context()) })
		synctest.Wait()
		t1 := time.Now()
		f.Release(rt.MethodOnline)
		synctest.Wait()
		if err := result(t, res, "Online"); err != nil || time.Since(t1) != 0 {
			t.Errorf("released Online = %v after %v", err, time.Since(t1))
		}
		f.SetDelay(rt.MethodOnline, 0)
		t2 := time.Now()
		_ = f.Online(t.Context())
		if time.Since(t2) != 0 {
			t.Error("SetDelay(0) did not remove the delay")
		}
	})
}
