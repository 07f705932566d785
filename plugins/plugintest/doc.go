// Package plugintest tests resource types through the plugin boundary.
//
//   - Suite runs the resource contract suite (resourcetest.Suite) in every
//     mode a type meets: on the type itself, through the real gRPC shims in
//     this process, and in a real plugin process. In the plugin modes it
//     also fails a call that the plugin reports outliving its ctx (the
//     host's deadlock detection), which a gRPC deadline would hide.
//     SuiteHost runs it against a host the test configured itself.
//   - InProcess serves types in the test process over go-plugin's in-memory
//     gRPC connection (plugin.TestPluginGRPCConn): the real client and
//     server shims and the real protocol, without a child process.
//   - Launch starts the test binary itself as a real plugin process (the
//     helper-process pattern): TestMain calls Main, which serves the types
//     when the binary was started as a plugin and otherwise runs the tests
//     and then fails the run if a child process was left behind. A TestMain
//     that does more calls ServeIfPlugin first instead.
//
// A type's test file:
//
//	func TestMain(m *testing.M) { plugintest.Main(m, mytype.New()) }
//
//	func TestSuite(t *testing.T) {
//		plugintest.Suite(t, mytype.New(), plugintest.Options{Options: resourcetest.Options{
//			Properties:    func(t *testing.T) resource.Properties { ... },
//			Up:            func(t *testing.T, in resourcetest.Instance) bool { ... },
//			HangProperties: func(t *testing.T, p resource.Properties) resource.Properties { ... },
//			BadProperties: []resourcetest.BadProperties{{Name: "relative path", Properties: ..., Field: "path"}},
//		}})
//	}
package plugintest
