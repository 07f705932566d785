package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sftkit/sft/policy"
)

// Defaults of the fields whose zero value means "default". Every field's
// default is also written next to it in reference.yaml.
const (
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "json"
	DefaultPluginMode       = PluginModeProcess
	DefaultAlertTimeout     = 5 * time.Second
	DefaultAlertRetries     = 5
	DefaultAlertBackoff     = time.Second
	DefaultAlertMaxBackoff  = 30 * time.Second
	DefaultAlertQueue       = 64
	DefaultShutdownTimeout  = 90 * time.Second
	DefaultOperationTimeout = 2 * time.Minute
	DefaultEventHistory     = 256
	SelfPlaceholder         = "${self}"
	// InstancePlaceholder is replaced by a random token made at each node
	// start: an app given it (the quick start's demo) can prove to its
	// readiness check that it is this node's app, not another's on the
	// same port.
	InstancePlaceholder      = "${instance}"
	PluginModeProcess        = "process"
	PluginModeInProcess      = "inprocess"
	AlertFailed              = "failed"
	AlertFailover            = "failover"
	AlertRecovery            = "recovery"
	socketDirName            = "sft"
	socketFileName           = "host.sock"
	defaultSocketParentInTmp = "/tmp"
)

// Config is the whole host configuration, as read from YAML. Zero fields
// take the defaults documented on each field (and in reference.yaml).
//
// A field with a `max` struct tag has that upper bound (a number, or a Go
// duration for Duration fields); Validate enforces it and reference.yaml
// states it. The bounds keep every derived value (2 x call_timeout, the
// alert queue's allocation, doubled backoffs) far from overflow.
//
// To add a top-level section: a struct type with yaml (and max) tags, a
// field here, its defaults in WithDefaults, its cross-field checks in a
// method of validator called from Validate, and its documentation in
// reference.yaml. Decoding (strict keys, positions, kinds, bounds) follows
// from the tags.
type Config struct {
	// Node describes this node.
	Node Node `yaml:"node"`
	// Log configures the structured event log.
	Log Log `yaml:"log"`
	// API configures the local control API the CLI talks to.
	API API `yaml:"api"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Alerts configures the alert hook.
	Alerts Alerts `yaml:"alerts"`
	// Plugins configures how resource types run.
	Plugins Plugins `yaml:"plugins"`
	// ShutdownTimeout bounds the graceful shutdown (all groups offline);
	// past it, what is still online is terminated. Default 90s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" max:"1h"`
	// Cluster, if set, makes this node one of a cluster: the groups run
	// on one node at a time, placed by the cluster. Default: none (a
	// single node runs every group).
	Cluster *Cluster `yaml:"cluster"`
	// Groups are the groups this node runs.
	Groups []Group `yaml:"groups"`
}

// Node describes this node.
type Node struct {
	// Name is this node's name, shown as the owner of its groups.
	// Default: the host name.
	Name string `yaml:"name"`
}

// Log configures the structured log (events and monitor transitions).
type Log struct {
	// Level: debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format: json (default) or text.
	Format string `yaml:"format"`
	// File is an absolute path to append to. Default: standard error.
	File string `yaml:"file"`
}

// API configures the control API.
type API struct {
	// Socket is the unix socket path. Default: $XDG_RUNTIME_DIR/sft/host.sock,
	// or /tmp/sft-<uid>/host.sock without XDG_RUNTIME_DIR. Its directory
	// is created with mode 0700; only the socket's owner (and root) may
	// use it.
	Socket string `yaml:"socket"`
	// TCP is an optional loopback address (127.0.0.1:7070, [::1]:7070)
	// to serve the API on as well. Needs Token or TokenFile.
	TCP string `yaml:"tcp"`
	// Token is the bearer token TCP clients must send.
	Token string `yaml:"token"`
	// TokenFile is a file holding the token (surrounding white space is
	// ignored); exclusive with Token.
	TokenFile string `yaml:"token_file"`
	// OperationTimeout bounds how long an online/offline/clear request
	// waits for the group to get there. Default 2m.
	OperationTimeout Duration `yaml:"operation_timeout" max:"1h"`
	// EventHistory is how many recent events `events` shows before it
	// follows. Default 256.
	EventHistory int `yaml:"event_history" max:"100000"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port of the /metrics endpoint. Default: off.
	Listen string `yaml:"listen"`
}

// Alerts configures the alert hook: fired when a group fails, asks for a
// failover, or recovers.
type Alerts struct {
	// Webhook is an http(s) URL that gets a POST with a JSON body per
	// alert. Default: none.
	Webhook string `yaml:"webhook"`
	// Command is an argv (no shell) run per alert with the JSON body on
	// standard input and SFT_ALERT_* variables. Default: none.
	Command []string `yaml:"command"`
	// On lists the alert kinds to send: failed, failover, recovery.
	// Default: all three.
	On []string `yaml:"on"`
	// Timeout bounds one delivery attempt. Default 5s.
	Timeout Duration `yaml:"timeout" max:"10m"`
	// Retries is how often a failed delivery is retried. Default 5;
	// -1 means no retry.
	Retries int `yaml:"retries" max:"100"`
	// Backoff is the first retry delay, doubled per retry. Default 1s.
	Backoff Duration `yaml:"backoff" max:"1h"`
	// MaxBackoff caps the retry delay. Default 30s.
	MaxBackoff Duration `yaml:"max_backoff" max:"24h"`
	// Queue is how many alerts may wait for delivery; more are dropped
	// (and counted). Default 64.
	Queue int `yaml:"queue" max:"10000"`
}

// Plugins configures where resource types run.
type Plugins struct {
	// Mode: process (default) runs the bundled types in plugin processes
	// (this binary re-executed); inprocess runs them inside the host.
	Mode string `yaml:"mode"`
	// AutoMTLS secures the host-plugin connection with go-plugin's
	// automatic mutual TLS (about 40 ms per plugin start). Default true;
	// false relies on the plugin socket's private directory.
	AutoMTLS *bool `yaml:"auto_mtls"`
	// External lists plugin binaries serving types of their own; see
	// ExternalPlugin. Default none.
	External []ExternalPlugin `yaml:"external"`
}

// AutoMTLSOn reports whether automatic mutual TLS is on (the default).
func (p Plugins) AutoMTLSOn() bool { return p.AutoMTLS == nil || *p.AutoMTLS }

// Group is a group of resources that fail over together.
type Group struct {
	// Name is unique; letters, digits, '.', '_' and '-'. Required.
	Name string `yaml:"name"`
	// Autostart brings the group online when the node starts. Default true.
	Autostart *bool `yaml:"autostart"`
	// Failover limits failovers to other nodes (with a cluster section).
	Failover Failover `yaml:"failover"`
	// Placement says where the group may run in a cluster.
	Placement Placement `yaml:"placement"`
	// Peer holds the group's peer-mode settings (cluster.mode peer).
	Peer *PeerGroup `yaml:"peer"`
	// Resources are the group's resources. At least one.
	Resources []Resource `yaml:"resources"`
}

// Failover is the group's failover policy (policy.Failover).
type Failover struct {
	// Threshold: failovers allowed within Period. Default nodes - 1.
	Threshold int `yaml:"threshold" max:"1000"`
	// Period: default 6h.
	Period Duration `yaml:"period" max:"720h"`
}

// Resource is one resource of a group.
type Resource struct {
	// Name is unique within the group; letters, digits, '.', '_', '-'.
	Name string `yaml:"name"`
	// Type is a resource type name (genericapp, ipaddress,
	// genericservice). Required.
	Type string `yaml:"type"`
	// DependsOn names resources of the same group that must be online
	// first.
	DependsOn []string `yaml:"depends_on"`
	// Properties are the type's properties, validated by the type. The
	// string "${self}" anywhere in a property value is replaced by the
	// path of this host binary, "${instance}" by a random token made at
	// each node start.
	Properties map[string]any `yaml:"properties"`
	// Restart is the restart policy.
	Restart Restart `yaml:"restart"`
	// Timing overrides the type's and the global default timing.
	Timing Timing `yaml:"timing"`
}

// Restart is a resource's restart policy (policy.Restart).
type Restart struct {
	// Action: restart-then-failover (default), restart-no-failover or
	// no-restart.
	Action string `yaml:"action"`
	// Threshold: restarts allowed within Period. Default 3.
	Threshold int `yaml:"threshold" max:"1000"`
	// Period: default 15m.
	Period Duration `yaml:"period" max:"720h"`
	// Delay before a restart. Unset (nil): 500ms; 0: restart at once;
	// negative: an error.
	Delay *Duration `yaml:"delay" max:"1h"`
	// RetryPeriod: try a resource left failed again after this long;
	// negative: never. Default 1h.
	RetryPeriod Duration `yaml:"retry_period" max:"720h"`
}

// Timing is a resource's timing as written in YAML; PolicyTiming converts
// it to sft's one timing type (resource.Timing, alias policy.Timing).
type Timing struct {
	// LooksAliveInterval: default the type's, else 1s.
	LooksAliveInterval Duration `yaml:"looks_alive_interval" max:"1h"`
	// IsAliveInterval: default the type's, else 10s.
	IsAliveInterval Duration `yaml:"is_alive_interval" max:"24h"`
	// CallTimeout bounds LooksAlive and IsAlive: default 2s.
	CallTimeout Duration `yaml:"call_timeout" max:"1h"`
	// PendingTimeout bounds Online and Offline: default 60s.
	PendingTimeout Duration `yaml:"pending_timeout" max:"24h"`
	// DeadlockTimeout: default 2 x call_timeout.
	DeadlockTimeout Duration `yaml:"deadlock_timeout" max:"2h"`
}

// Duration is a time.Duration written as a Go duration string ("500ms",
// "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// IsAutostart reports whether the group starts with the node.
func (g Group) IsAutostart() bool { return g.Autostart == nil || *g.Autostart }

// PolicyRestart converts r (already validated) to a policy.Restart.
func (r Restart) PolicyRestart() policy.Restart {
	a, _ := policy.ParseRestartAction(r.Action)
	var delay time.Duration // policy default
	if r.Delay != nil {
		delay = r.Delay.D()
		if delay == 0 {
			delay = -1 // policy: negative means no delay
		}
	}
	return policy.Restart{Action: a, Threshold: r.Threshold, Period: r.Period.D(), Delay: delay, RetryPeriod: r.RetryPeriod.D()}
}

// PolicyTiming converts t to a policy.Timing.
func (t Timing) PolicyTiming() policy.Timing {
	return policy.Timing{
		LooksAliveInterval: t.LooksAliveInterval.D(),
		IsAliveInterval:    t.IsAliveInterval.D(),
		CallTimeout:        t.CallTimeout.D(),
		PendingTimeout:     t.PendingTimeout.D(),
		DeadlockTimeout:    t.DeadlockTimeout.D(),
	}
}

// PolicyFailover converts f to a policy.Failover.
func (f Failover) PolicyFailover() policy.Failover {
	return policy.Failover{Threshold: f.Threshold, Period: f.Period.D()}
}

// WithDefaults returns a copy of c with the defaults filled in where they
// do not depend on the machine (the node name and socket are resolved by
// NodeName and SocketPath).
func (c Config) WithDefaults() Config {
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Plugins.Mode == "" {
		c.Plugins.Mode = DefaultPluginMode
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.API.OperationTimeout == 0 {
		c.API.OperationTimeout = Duration(DefaultOperationTimeout)
	}
	if c.API.EventHistory == 0 {
		c.API.EventHistory = DefaultEventHistory
	}
	if c.Cluster != nil {
		cl := *c.Cluster
		if cl.FenceTimeout == 0 {
			cl.FenceTimeout = Duration(DefaultFenceTimeout)
		}
		if cl.Profile == "" {
			cl.Profile = "default"
		}
		c.Cluster = &cl
	}
	a := &c.Alerts
	if a.Timeout == 0 {
		a.Timeout = Duration(DefaultAlertTimeout)
	}
	if a.Retries == 0 {
		a.Retries = DefaultAlertRetries
	}
	if a.Backoff == 0 {
		a.Backoff = Duration(DefaultAlertBackoff)
	}
	if a.MaxBackoff == 0 {
		a.MaxBackoff = Duration(DefaultAlertMaxBackoff)
	}
	if a.Queue == 0 {
		a.Queue = DefaultAlertQueue
	}
	if len(a.On) == 0 {
		a.On = []string{AlertFailed, AlertFailover, AlertRecovery}
	}
	return c
}

// NodeName is the configured node name, or the host name.
func (c Config) NodeName() string {
	if c.Node.Name != "" {
		return c.Node.Name
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// SocketPath is the configured API socket, or DefaultSocketPath().
func (c Config) SocketPath() string {
	if c.API.Socket != "" {
		return c.API.Socket
	}
	return DefaultSocketPath()
}

// DefaultSocketPath is $XDG_RUNTIME_DIR/sft/host.sock when XDG_RUNTIME_DIR is
// set, else /tmp/sft-<uid>/host.sock.
func DefaultSocketPath() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, socketDirName, socketFileName)
	}
	return filepath.Join(defaultSocketParentInTmp, socketDirName+"-"+strconv.Itoa(os.Geteuid()), socketFileName)
}

// ReadToken returns the API token (from Token or TokenFile).
func (a API) ReadToken() (string, error) {
	if a.Token != "" || a.TokenFile == "" {
		return a.Token, nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("api.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("api.token_file %q: empty", a.TokenFile)
	}
	return tok, nil
}

// ExpandSelf returns a deep copy of props with SelfPlaceholder replaced by
// self in every string (InstancePlaceholder stays).
func ExpandSelf(props map[string]any, self string) map[string]any {
	return Expand(props, strings.NewReplacer(SelfPlaceholder, self))
}

// ExpandAll returns a deep copy of props with SelfPlaceholder replaced by
// self and InstancePlaceholder by instance in every string.
func ExpandAll(props map[string]any, self, instance string) map[string]any {
	return Expand(props, strings.NewReplacer(SelfPlaceholder, self, InstancePlaceholder, instance))
}

// Expand returns a deep copy of props with r applied to every string.
func Expand(props map[string]any, r *strings.Replacer) map[string]any {
	if props == nil {
		return nil
	}
	return expand(props, r).(map[string]any)
}

func expand(v any, r *strings.Replacer) any {
	switch x := v.(type) {
	case string:
		return r.Replace(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = expand(e, r)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expand(e, r)
		}
		return out
	}
	return v
}
