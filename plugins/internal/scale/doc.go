// Package scale holds the plugin scale measurement: 1,000 resources of one
// plugin type driven by the real monitor (LooksAlive every 1 s, IsAlive every
// 10 s), measuring host and plugin CPU and RSS. It runs only when asked:
//
//	SFT_PLUGINS_SCALE=1 go test -run TestScale -v ./plugins/internal/scale
//
// SFT_PLUGINS_SCALE_DURATION (default 60s) sets the measurement window,
// SFT_PLUGINS_SCALE_MODE=rpc makes every LooksAlive a gRPC call
// (plugins.Config.RemoteChecks), =inprocess opens the resources in the
// host (the monitor's own cost)
// for comparison with the default, where
// the plugin runs the LooksAlive loop and the host answers from its result.
//
// Command scalebench (./scalebench) measures the same with real
// applications (genericapp resources running a small static C program):
// idle cost at 1,000 and 5,000, bringing 1,000 online, graceful shutdown,
// a plugin crash with 1,000 resources and the paired crash-to-restart
// overhead (issue 15):
//
//	go run ./plugins/internal/scale/scalebench -phases idle,online,stop,crash,restart
package scale
