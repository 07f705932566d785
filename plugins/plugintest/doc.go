// Package plugintest tests resource types through the plugin boundary.
//
//   - InProcess serves types in the test process over go-plugin's in-memory
//     gRPC connection (plugin.TestPluginGRPCConn): the real client and
//     server shims and the real protocol, without a child process. Fast,
//     and the test can still reach the type's instances directly.
//   - Launch starts the test binary itself as a real plugin process (the
//     helper-process pattern): TestMain calls Main, which serves the types
//     when the binary was started as a plugin and otherwise runs the tests
//     and then fails the run if a child process was left behind.
//   - Conformance and ConformanceHost run resourcetest.ConformanceWith on
//     instances opened through a plugin host, so a type proves it keeps the
//     resource contract across the wire.
//
// A type's test file:
//
//	func TestMain(m *testing.M) { plugintest.Main(m, mytype.New()) }
//
//	func TestConformanceInProcess(t *testing.T) {
//		plugintest.Conformance(t, mytype.New(), plugintest.Options{Properties: props})
//	}
//
//	func TestConformanceProcess(t *testing.T) {
//		h := plugintest.Launch(t, plugins.Config{})
//		plugintest.ConformanceHost(t, h, "mytype", plugintest.Options{Properties: props})
//	}
package plugintest
