package config_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/resource"
)

// fakeType validates like a real type: "address" must look like a prefix,
// "check.url" must start with http://, anything else is unknown.
type fakeType struct{}

func (fakeType) Name() string { return "fake" }

func (fakeType) Validate(_ context.Context, p resource.Properties) error {
	for _, k := range p.Keys() {
		switch k {
		case "address":
			if s, _ := p[k].(string); !strings.Contains(s, "/") {
				return resource.ConfigError("address", p[k], "not a CIDR prefix")
			}
		case "check":
			m, _ := p[k].(map[string]any)
			if u, _ := m["url"].(string); !strings.HasPrefix(u, "http://") {
				return resource.ConfigError("check.url", m["url"], "want an http:// URL")
			}
		case "netns":
			if s, _ := p[k].(string); s != "" {
				if _, err := os.Stat(s); err != nil {
					return resource.ConfigError("netns", s, "cannot open network namespace: %v", err)
				}
			}
		case "two":
			return errors.Join(resource.ConfigError("two.a", 1, "bad a"), resource.ConfigError("two.b", 2, "bad b"))
		case "count", "ratio", "on", "list", "nothing", "when":
		default:
			return resource.ConfigError(k, nil, "unknown property")
		}
	}
	return nil
}

func (fakeType) Open(context.Context, resource.OpenRequest) (resource.Resource, error) {
	return nil, errors.New("not for opening")
}

func registry(t testing.TB) *resource.Registry {
	reg, err := resource.NewRegistry(fakeType{}, genericapp.New())
	require.NoError(t, err)
	return reg
}

func load(t testing.TB, yaml string) (*config.Config, error) {
	return config.Load(context.Background(), "t.yaml", []byte(yaml), registry(t), "/bin/true")
}

func TestGoodConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "empty document", yaml: "", check: func(t *testing.T, c *config.Config) {
			require.Empty(t, c.Groups)
		}},
		{name: "comments only", yaml: "# nothing\n", check: func(t *testing.T, c *config.Config) {
			require.Empty(t, c.Groups)
		}},
		{name: "minimal group", yaml: `
groups:
  - name: g
    resources:
      - {name: r, type: fake, properties: {address: 10.0.0.1/24}}
`, check: func(t *testing.T, c *config.Config) {
			require.Len(t, c.Groups, 1)
			g := c.Groups[0]
			require.True(t, g.IsAutostart(), "autostart defaults to true")
			require.Equal(t, "10.0.0.1/24", g.Resources[0].Properties["address"])
		}},
		{name: "every field", yaml: `
node: {name: n1}
log: {level: debug, format: text, file: /var/log/sft.log}
api:
  socket: /tmp/h.sock
  tcp: "[::1]:7070"
  token: 0123456789abcdef
  operation_timeout: 30s
  event_history: 10
metrics: {listen: "127.0.0.1:9464"}
alerts:
  webhook: http://127.0.0.1:9/hook
  command: [logger, -t, sft]
  on: [failed, recovery]
  timeout: 1s
  retries: -1
  backoff: 100ms
  max_backoff: 2s
  queue: 8
plugins: {mode: inprocess, auto_mtls: false}
shutdown_timeout: 1m
groups:
  - name: web
    autostart: false
    failover: {threshold: 2, period: 1h}
    resources:
      - name: ip
        type: fake
        properties:
          address: 192.0.2.10/24
          count: 3
          ratio: 0.5
          on: true
          nothing: ~
          when: 2001-12-14
          list: [a, 1, {b: c}]
          check: {url: "http://x"}
        restart: {action: restart-no-failover, threshold: 1, period: 1m, delay: 1s, retry_period: -1s}
        timing: {looks_alive_interval: 500ms, is_alive_interval: 5s, call_timeout: 1s, pending_timeout: 20s, deadlock_timeout: 3s}
      - name: app
        type: genericapp
        depends_on: [ip]
        properties: {argv: ["${self}", "x"]}
`, check: func(t *testing.T, c *config.Config) {
			require.Equal(t, "n1", c.NodeName())
			require.False(t, c.Plugins.AutoMTLSOn())
			require.Equal(t, "/tmp/h.sock", c.SocketPath())
			require.Equal(t, config.Duration(30*time.Second), c.API.OperationTimeout)
			require.False(t, c.Groups[0].IsAutostart())
			ip := c.Groups[0].Resources[0]
			require.Equal(t, int64(3), ip.Properties["count"])
			require.Equal(t, 0.5, ip.Properties["ratio"])
			require.Equal(t, true, ip.Properties["on"])
			require.Nil(t, ip.Properties["nothing"])
			require.Equal(t, "2001-12-14", ip.Properties["when"], "timestamps stay strings")
			require.Equal(t, []any{"a", int64(1), map[string]any{"b": "c"}}, ip.Properties["list"])
			pr := ip.Restart.PolicyRestart()
			require.Equal(t, "restart-no-failover", pr.Action.String())
			require.Equal(t, -time.Second, pr.RetryPeriod)
			require.Equal(t, 3*time.Second, ip.Timing.PolicyTiming().DeadlockTimeout)
			require.Equal(t, time.Hour, c.Groups[0].Failover.PolicyFailover().Period)
			require.Equal(t, []string{"ip"}, c.Groups[0].Resources[1].DependsOn)
		}},
		{name: "anchors and aliases", yaml: `
x-timing: &fast {looks_alive_interval: 100ms}
`, check: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(t, tc.yaml)
			if tc.name == "anchors and aliases" {
				// an unknown top-level key, even one holding an anchor
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestAliasesResolve(t *testing.T) {
	t.Parallel()
	c, err := load(t, `
groups:
  - name: a
    resources:
      - name: r
        type: fake
        properties: &p {address: 10.0.0.1/24}
        timing: &t {looks_alive_interval: 100ms}
  - name: b
    resources:
      - {name: r, type: fake, properties: *p, timing: *t}
`)
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1/24", c.Groups[1].Resources[0].Properties["address"])
	require.Equal(t, 100*time.Millisecond, c.Groups[1].Resources[0].Timing.LooksAliveInterval.D())
}

// TestBadConfigs checks every error message: the position, the path, the
// bad value and the reason.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("s", 120)
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		// Decoding.
		{name: "syntax error", yaml: "groups: [\n", want: []string{
			"t.yaml:2:1: YAML syntax: did not find expected node content"}},
		{name: "syntax error on the right line", yaml: "node:\n  name: [a\nlog: {}\n", want: []string{
			"t.yaml:2:3: YAML syntax: did not find expected ',' or ']'"}},
		{name: "tab in indentation", yaml: "groups:\n  - name: g\n\tresources: []\n", want: []string{
			"t.yaml:3:1: tab in indentation: YAML indents with spaces"}},
		{name: "huge integer", yaml: "alerts: {queue: 9999999999999999999999}\n", want: []string{
			`t.yaml:1:17: alerts.queue "9999999999999999999999": too large (max 10000)`}},
		{name: "huge duration", yaml: "shutdown_timeout: 99999999999h\n", want: []string{
			`t.yaml:1:19: shutdown_timeout "99999999999h": too large (max 1h)`}},
		{name: "bounds", yaml: `alerts: {queue: 9999999999999, retries: 101, timeout: 11m, backoff: 2h, max_backoff: 25h}
api: {event_history: 100001, operation_timeout: 61m}
shutdown_timeout: 2h
groups:
  - name: g
    failover: {threshold: 1001, period: 721h}
    resources:
      - name: r
        type: fake
        restart: {threshold: 1001, period: 721h, delay: 2h, retry_period: 721h}
        timing: {call_timeout: 2000000h, looks_alive_interval: 2h, is_alive_interval: 25h, pending_timeout: 25h, deadlock_timeout: 3h}
`, want: []string{
			`t.yaml:1:10: alerts.queue 9999999999999: too large (max 10000)`,
			`t.yaml:1:32: alerts.retries 101: too large (max 100)`,
			`t.yaml:1:46: alerts.timeout "11m0s": too large (max 10m)`,
			`t.yaml:1:60: alerts.backoff "2h0m0s": too large (max 1h)`,
			`t.yaml:1:73: alerts.max_backoff "25h0m0s": too large (max 24h)`,
			`t.yaml:2:7: api.event_history 100001: too large (max 100000)`,
			`t.yaml:2:30: api.operation_timeout "1h1m0s": too large (max 1h)`,
			`t.yaml:3:1: shutdown_timeout "2h0m0s": too large (max 1h)`,
			`t.yaml:6:16: groups[0].failover.threshold 1001: too large (max 1000)`,
			`t.yaml:6:33: groups[0].failover.period "721h0m0s": too large (max 720h)`,
			`t.yaml:10:19: groups[0].resources[0].restart.threshold 1001: too large (max 1000)`,
			`t.yaml:10:36: groups[0].resources[0].restart.period "721h0m0s": too large (max 720h)`,
			`t.yaml:10:50: groups[0].resources[0].restart.delay "2h0m0s": too large (max 1h)`,
			`t.yaml:10:61: groups[0].resources[0].restart.retry_period "721h0m0s": too large (max 720h)`,
			`t.yaml:11:18: groups[0].resources[0].timing.call_timeout "2000000h0m0s": too large (max 1h)`,
			`t.yaml:11:42: groups[0].resources[0].timing.looks_alive_interval "2h0m0s": too large (max 1h)`,
			`t.yaml:11:68: groups[0].resources[0].timing.is_alive_interval "25h0m0s": too large (max 24h)`,
			`t.yaml:11:92: groups[0].resources[0].timing.pending_timeout "25h0m0s": too large (max 24h)`,
			`t.yaml:11:114: groups[0].resources[0].timing.deadlock_timeout "3h0m0s": too large (max 2h)`,
			`t.yaml:11:114: groups[0].resources[0].timing.deadlock_timeout "3h0m0s": must be longer than call_timeout (2000000h0m0s)`}},
		{name: "negative restart delay", yaml: "groups: [{name: g, resources: [{name: r, type: fake, restart: {delay: -1s}}]}]\n", want: []string{
			`t.yaml:1:64: groups[0].resources[0].restart.delay "-1s": must not be negative (0 restarts at once)`}},
		{name: "two documents", yaml: "node: {}\n---\nnode: {}\n", want: []string{
			"t.yaml:2:1: want one YAML document, found a second one"}},
		{name: "top level not a mapping", yaml: "- a\n", want: []string{
			"t.yaml:1:1: want a mapping, got a list"}},
		{name: "unknown top-level key", yaml: "nodes: {}\n", want: []string{
			"t.yaml:1:1: nodes: unknown field (known: alerts, api, cluster, groups, log, metrics, node, plugins, shutdown_timeout)"}},
		{name: "unknown nested key", yaml: "groups:\n  - name: g\n    resource: []\n", want: []string{
			"t.yaml:3:5: groups[0].resource: unknown field (known: autostart, failover, name, peer, placement, resources)"}},
		{name: "duplicate key", yaml: "node: {name: a}\nnode: {name: b}\n", want: []string{
			"t.yaml:2:1: node: duplicate key"}},
		{name: "duplicate property", yaml: "groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: {address: a/1, address: b/2}}\n", want: []string{
			"t.yaml:4:58: groups[0].resources[0].properties.address: duplicate key"}},
		{name: "list where a mapping belongs", yaml: "node: [a]\n", want: []string{
			"t.yaml:1:7: node: want a mapping, got a list"}},
		{name: "mapping where a list belongs", yaml: "groups: {a: b}\n", want: []string{
			"t.yaml:1:9: groups: want a list, got a mapping"}},
		{name: "list where a string belongs", yaml: "node: {name: [a]}\n", want: []string{
			"t.yaml:1:14: node.name: want a string, got a list"}},
		{name: "not an integer", yaml: "alerts: {queue: many}\n", want: []string{
			`t.yaml:1:17: alerts.queue "many": want an integer`}},
		{name: "not a bool", yaml: "groups:\n  - {name: g, autostart: maybe}\n", want: []string{
			`t.yaml:2:26: groups[0].autostart "maybe": want true or false`}},
		{name: "duration as a number", yaml: "shutdown_timeout: 5\n", want: []string{
			`t.yaml:1:19: shutdown_timeout "5": want a duration like "500ms", "2s" or "1m30s"`}},
		{name: "bad duration", yaml: "alerts: {backoff: 5 minutes}\n", want: []string{
			`t.yaml:1:19: alerts.backoff "5 minutes": not a duration (want e.g. "500ms", "2s" or "1m30s")`}},
		{name: "properties not a mapping", yaml: "groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: [1]}\n", want: []string{
			"t.yaml:4:43: groups[0].resources[0].properties: want a mapping of properties, got a list"}},
		{name: "non-string key", yaml: "node: {[a]: b}\n", want: []string{
			"t.yaml:1:8: node: a key must be a string, got a list"}},
		{name: "non-string property name", yaml: "groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: {[a]: 1}}\n", want: []string{
			"t.yaml:4:44: groups[0].resources[0].properties: a property name must be a string, got a list"}},
		{name: "infinite number", yaml: "groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: {ratio: .inf}}\n", want: []string{
			`t.yaml:4:51: groups[0].resources[0].properties.ratio ".inf": not a finite number`}},
		{name: "binary property", yaml: "groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: {x: !!binary aGk=}}\n", want: []string{
			`t.yaml:4:47: groups[0].resources[0].properties.x "aGk=": unsupported value (tag !!binary)`}},

		// Validation: node, log.
		{name: "bad node name", yaml: "node: {name: a b}\n", want: []string{
			`t.yaml:1:8: node.name "a b": want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`}},
		{name: "log", yaml: "log: {level: loud, format: xml, file: rel.log}\n", want: []string{
			`t.yaml:1:7: log.level "loud": want debug, info, warn or error`,
			`t.yaml:1:20: log.format "xml": want json or text`,
			`t.yaml:1:33: log.file "rel.log": must be an absolute path`}},

		// API.
		{name: "relative socket", yaml: "api: {socket: rel.sock}\n", want: []string{
			`t.yaml:1:7: api.socket "rel.sock": must be an absolute path`}},
		{name: "socket path too long", yaml: "api: {socket: " + long + "}\n", want: []string{
			`t.yaml:1:7: api.socket "` + long + `": too long for a unix socket (121 bytes, at most 107)`}},
		{name: "tcp not loopback, no token", yaml: "api: {tcp: \"0.0.0.0:7070\"}\n", want: []string{
			`t.yaml:1:7: api.tcp "0.0.0.0:7070": must be a loopback address (127.0.0.1 or ::1): the API is local`,
			`t.yaml:1:7: api.tcp "0.0.0.0:7070": needs api.token or api.token_file: the TCP API requires a bearer token`}},
		{name: "tcp host name", yaml: "api: {tcp: \"localhost:7070\", token: 0123456789abcdef}\n", want: []string{
			`t.yaml:1:7: api.tcp "localhost:7070": must be a loopback address (127.0.0.1 or ::1): the API is local`}},
		{name: "tcp bad port", yaml: "api: {tcp: \"127.0.0.1:0\", token: 0123456789abcdef}\n", want: []string{
			`t.yaml:1:7: api.tcp "127.0.0.1:0": bad port "0" (want 1-65535)`}},
		{name: "tcp no port", yaml: "api: {tcp: \"127.0.0.1\", token: 0123456789abcdef}\n", want: []string{
			`t.yaml:1:7: api.tcp "127.0.0.1": want host:port`}},
		{name: "token and token file, short token", yaml: "api: {token: short, token_file: tok}\n", want: []string{
			`t.yaml:1:7: api.token: too short (5 characters, at least 16)`,
			`t.yaml:1:21: api.token_file "tok": set api.token or api.token_file, not both`,
			`t.yaml:1:21: api.token_file "tok": must be an absolute path`}},
		{name: "negative api numbers", yaml: "api: {operation_timeout: -1s, event_history: -1}\n", want: []string{
			`t.yaml:1:7: api.operation_timeout "-1s": must not be negative`,
			`t.yaml:1:31: api.event_history -1: must not be negative`}},

		// Metrics.
		{name: "metrics not host:port", yaml: "metrics: {listen: nope}\n", want: []string{
			`t.yaml:1:11: metrics.listen "nope": want host:port`}},
		{name: "metrics host name", yaml: "metrics: {listen: \"example.com:9464\"}\n", want: []string{
			`t.yaml:1:11: metrics.listen "example.com:9464": want an IP address or localhost as host`}},
		{name: "metrics bad port", yaml: "metrics: {listen: \":99999\"}\n", want: []string{
			`t.yaml:1:11: metrics.listen ":99999": bad port "99999" (want 1-65535)`}},

		// Alerts.
		{name: "alerts", yaml: "alerts: {webhook: \"ftp://x\", on: [failed, failed, boom], retries: -3, queue: -1, timeout: -1s, backoff: -1s, max_backoff: -2s}\n", want: []string{
			`t.yaml:1:10: alerts.webhook "ftp://x": scheme must be http or https`,
			`t.yaml:1:43: alerts.on[1] "failed": listed twice`,
			`t.yaml:1:51: alerts.on[2] "boom": want failed, failover or recovery`,
			`t.yaml:1:58: alerts.retries -3: must be -1 (no retry) or more`,
			`t.yaml:1:71: alerts.queue -1: must not be negative`,
			`t.yaml:1:82: alerts.timeout "-1s": must not be negative`,
			`t.yaml:1:96: alerts.backoff "-1s": must not be negative`,
			`t.yaml:1:110: alerts.max_backoff "-2s": must not be negative`}},
		{name: "webhook without host", yaml: "alerts: {webhook: \"http:///x\"}\n", want: []string{
			`t.yaml:1:10: alerts.webhook "http:///x": no host`}},
		{name: "webhook not a URL", yaml: "alerts: {webhook: \"http://[::1\"}\n", want: []string{
			`t.yaml:1:10: alerts.webhook "http://[::1": not a URL`}},
		{name: "empty alert command", yaml: "alerts: {command: []}\n", want: []string{
			`t.yaml:1:10: alerts.command []: want a program and its arguments`}},
		{name: "relative alert command", yaml: "alerts: {command: [bin/alert]}\n", want: []string{
			`t.yaml:1:20: alerts.command[0] "bin/alert": must be absolute or a name looked up in PATH`}},

		// Plugins, shutdown.
		{name: "plugin mode", yaml: "plugins: {mode: magic}\n", want: []string{
			`t.yaml:1:11: plugins.mode "magic": want process or inprocess`}},
		{name: "negative shutdown timeout", yaml: "shutdown_timeout: -1s\n", want: []string{
			`t.yaml:1:1: shutdown_timeout "-1s": must not be negative`}},

		// Groups.
		{name: "group without name and resources", yaml: "groups:\n  - {}\n", want: []string{
			`t.yaml:2:5: groups[0].name: required`,
			`t.yaml:2:5: groups[0].resources: a group needs at least one resource`}},
		{name: "bad and duplicate group names", yaml: "groups:\n  - {name: -x, resources: [{name: r, type: fake}]}\n  - {name: g, resources: [{name: r, type: fake}]}\n  - {name: g, resources: [{name: r, type: fake}]}\n", want: []string{
			`t.yaml:2:6: groups[0].name "-x": want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`t.yaml:4:6: groups[2].name "g": duplicate group name (also groups[1])`}},
		{name: "failover policy", yaml: "groups:\n  - name: g\n    failover: {threshold: -1, period: -1h}\n    resources: [{name: r, type: fake}]\n", want: []string{
			`t.yaml:3:16: groups[0].failover.threshold -1: must not be negative`,
			`t.yaml:3:31: groups[0].failover.period "-1h0m0s": must not be negative`}},
		{name: "resource names and types", yaml: `groups:
  - name: g
    resources:
      - {type: fake}
      - {name: "r r", type: fake}
      - {name: a}
      - {name: a, type: nope}
`, want: []string{
			`t.yaml:4:9: groups[0].resources[0].name: required`,
			`t.yaml:5:10: groups[0].resources[1].name "r r": want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`t.yaml:6:9: groups[0].resources[2].type: required (known: fake, genericapp)`,
			`t.yaml:7:10: groups[0].resources[3].name "a": duplicate resource name in the group (also resources[2])`,
			`t.yaml:7:19: groups[0].resources[3].type "nope": unknown resource type (known: fake, genericapp)`}},
		{name: "property errors from the type", yaml: `groups:
  - name: g
    resources:
      - name: a
        type: fake
        properties:
          address: 10.0.0.1
      - name: b
        type: fake
        properties:
          check: {url: "ftp://x"}
      - name: c
        type: fake
        properties: {colour: red}
      - name: d
        type: genericapp
        properties: {argv: ["${self}"], stop_signal: SIGNOPE}
`, want: []string{
			`t.yaml:7:11: groups[0].resources[0].properties.address "10.0.0.1": not a CIDR prefix`,
			`t.yaml:11:19: groups[0].resources[1].properties.check.url "ftp://x": want an http:// URL`,
			`t.yaml:14:22: groups[0].resources[2].properties.colour: unknown property`,
			`t.yaml:17:41: groups[0].resources[3].properties.stop_signal "SIGNOPE": unknown signal "SIGNOPE"`}},
		{name: "restart and timing policies", yaml: `groups:
  - name: g
    resources:
      - name: r
        type: fake
        restart: {action: sometimes, threshold: -1, period: -1s}
        timing: {looks_alive_interval: -1s, call_timeout: 2s, deadlock_timeout: 1s}
`, want: []string{
			`t.yaml:6:19: groups[0].resources[0].restart.action "sometimes": want no-restart, restart-no-failover or restart-then-failover`,
			`t.yaml:6:38: groups[0].resources[0].restart.threshold -1: must not be negative`,
			`t.yaml:6:53: groups[0].resources[0].restart.period "-1s": must not be negative`,
			`t.yaml:7:18: groups[0].resources[0].timing.looks_alive_interval "-1s": must not be negative`,
			`t.yaml:7:63: groups[0].resources[0].timing.deadlock_timeout "1s": must be longer than call_timeout (2s)`}},
		{name: "dependencies", yaml: `groups:
  - name: g
    resources:
      - {name: a, type: fake, depends_on: [a, ghost, b, b]}
      - {name: b, type: fake}
`, want: []string{
			`t.yaml:4:44: groups[0].resources[0].depends_on[0] "a": a resource cannot depend on itself`,
			`t.yaml:4:47: groups[0].resources[0].depends_on[1] "ghost": no such resource in the group`,
			`t.yaml:4:57: groups[0].resources[0].depends_on[3] "b": listed twice`}},
		{name: "dependency cycle", yaml: `groups:
  - name: g
    resources:
      - {name: a, type: fake, depends_on: [c]}
      - {name: b, type: fake, depends_on: [a]}
      - {name: c, type: fake, depends_on: [b]}
`, want: []string{
			`t.yaml:4:31: groups[0].resources[0].depends_on: dependency cycle: a -> c -> b -> a`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(t, tc.yaml)
			require.Error(t, err)
			require.Nil(t, c)
			var es config.Errors
			require.ErrorAs(t, err, &es)
			require.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

func TestSampleConfigsValidate(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"../quickstart.yaml", "../reference.yaml", "../netns-demo.yaml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(name)
			require.NoError(t, err)
			reg, err := resource.NewRegistry(genericapp.New(), fakeNamed("ipaddress"), fakeNamed("genericservice"))
			require.NoError(t, err)
			_, err = config.Load(context.Background(), name, data, reg, "/bin/true")
			require.NoError(t, err)
		})
	}
}

// fakeNamed accepts any properties under another name: the sample configs
// use types whose validation depends on the machine (interfaces).
type fakeNamed string

func (f fakeNamed) Name() string                                      { return string(f) }
func (fakeNamed) Validate(context.Context, resource.Properties) error { return nil }
func (fakeNamed) Open(context.Context, resource.OpenRequest) (resource.Resource, error) {
	return nil, errors.New("no")
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := config.Config{}.WithDefaults()
	require.Equal(t, "info", c.Log.Level)
	require.Equal(t, "json", c.Log.Format)
	require.Equal(t, config.PluginModeProcess, c.Plugins.Mode)
	require.True(t, c.Plugins.AutoMTLSOn())
	require.Equal(t, config.DefaultShutdownTimeout, c.ShutdownTimeout.D())
	require.Equal(t, config.DefaultOperationTimeout, c.API.OperationTimeout.D())
	require.Equal(t, config.DefaultEventHistory, c.API.EventHistory)
	require.Equal(t, config.DefaultAlertRetries, c.Alerts.Retries)
	require.Equal(t, config.DefaultAlertQueue, c.Alerts.Queue)
	require.Equal(t, []string{"failed", "failover", "recovery"}, c.Alerts.On)
	require.NotEmpty(t, c.NodeName())
}

func TestDefaultSocketPath(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	require.Equal(t, "/run/user/1000/sft/host.sock", config.DefaultSocketPath())
	t.Setenv("XDG_RUNTIME_DIR", "")
	require.Equal(t, "/tmp/sft-"+itoa(os.Geteuid())+"/host.sock", config.DefaultSocketPath())
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestExpandSelf(t *testing.T) {
	t.Parallel()
	in := map[string]any{"argv": []any{"${self}", "x"}, "env": map[string]any{"A": "${self}/b"}, "n": int64(1)}
	out := config.ExpandSelf(in, "/bin/host")
	require.Equal(t, map[string]any{"argv": []any{"/bin/host", "x"}, "env": map[string]any{"A": "/bin/host/b"}, "n": int64(1)}, out)
	require.Equal(t, "${self}", in["argv"].([]any)[0], "the input is not modified")
	require.Nil(t, config.ExpandSelf(nil, "x"))
}

func TestReadToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := dir + "/tok"
	require.NoError(t, os.WriteFile(f, []byte("  secret-token-0123456789\n"), 0o600))
	tok, err := config.API{TokenFile: f}.ReadToken()
	require.NoError(t, err)
	require.Equal(t, "secret-token-0123456789", tok)
	require.NoError(t, os.WriteFile(f, []byte("\n"), 0o600))
	_, err = config.API{TokenFile: f}.ReadToken()
	require.EqualError(t, err, `api.token_file "`+f+`": empty`)
	tok, err = config.API{Token: "abc"}.ReadToken()
	require.NoError(t, err)
	require.Equal(t, "abc", tok)
}

func TestAliasBomb(t *testing.T) {
	t.Parallel()
	// Each level doubles the nodes: 2^20 nodes when expanded.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i <= 20; i++ {
		b.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [*a" + itoa(i-1) + ", *a" + itoa(i-1) + "]\n")
	}
	b.WriteString("groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: {list: *a20}}\n")
	_, err := load(t, b.String())
	require.Error(t, err)
	require.Contains(t, err.Error(), "document too large")
}
