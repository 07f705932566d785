// Package sft ("system fault tolerance") brings failover-cluster style high
// availability to Go programs: resources (a virtual IP, an application, an
// OS service, anything a plugin describes) are brought online in dependency
// order, watched with a cheap and a thorough health check, restarted in place
// when they fail, and reported for failover when restarting does not help.
//
// This package holds no code; it is the map.
//
// # Packages
//
//	resource                  the contract: Resource, Type, Registry, State, error classes
//	resource/resourcetest     scripted fault-injecting fake + conformance suite
//	policy                    pure decisions: restart, failover, failback, owners, timing
//	monitor                   runs groups on one node: timeouts, polling, restarts, ordering, events
//	plugins                   resource types in separate processes over hashicorp/go-plugin (gRPC)
//	plugins/ipaddress         virtual IP: netlink, duplicate-address probe, gratuitous ARP / NA
//	plugins/genericapp        supervise a command in its own process group
//	plugins/genericservice    drive the OS service manager (systemd over D-Bus)
//	examples/host             the runnable host: config, CLI, HTTP API, metrics, event log
//
// Imports point down only: resource imports the standard library, policy
// imports resource, monitor imports both, plugins adapt resource to gRPC.
//
// # Failover-cluster terms
//
//	Windows failover cluster          sft
//	--------------------------------  ------------------------------------------------------
//	resource DLL                      a resource.Type (in-process or served by a plugin)
//	Open / Close                      resource.Type.Open / resource.Closer
//	Online / Offline / Terminate      resource.Resource.Online / Offline / Terminate
//	LooksAlive / IsAlive              resource.Resource.LooksAlive / IsAlive
//	LooksAlivePollInterval            policy.Timing.LooksAliveInterval (1 s)
//	IsAlivePollInterval               policy.Timing.IsAliveInterval (10 s)
//	PendingTimeout                    policy.Timing.PendingTimeout (60 s), extended by resource.ReportProgress
//	DeadlockTimeout                   policy.Timing.DeadlockTimeout (2 x call timeout), then resource.ProcessKiller
//	resource monitor                  monitor.Monitor
//	resource hosting subsystem (RHS)  a plugin process (plugins); one per type, or one per resource
//	RestartAction                     policy.Restart.Action
//	RestartThreshold / RestartPeriod  policy.Restart.Threshold / Period (3 in 15 min)
//	RestartDelay                      policy.Restart.Delay (500 ms)
//	RetryPeriodOnFailure              policy.Restart.RetryPeriod (1 h)
//	FailoverThreshold / Period        policy.Failover.Threshold / Period (nodes - 1 in 6 h)
//	preferred owners                  policy.Owners.Preferred
//	possible owners                   policy.Owners.Possible
//	AutoFailbackType, failback window policy.Failback (prevent, immediate, window)
//	dependencies                      monitor.ResourceSpec.DependsOn (a DAG)
//	group                             monitor.GroupSpec
//	cluster events                    monitor.Event via monitor.Monitor.Subscribe
//
// Error classes follow OCF return codes: resource.Transient (restart here),
// resource.NodeLocal (this node cannot host it: move), resource.Configuration
// (retry nowhere).
package sft
