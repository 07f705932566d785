.PHONY: proto proto-check lint

# proto regenerates the committed gRPC code of the plugin protocol.
proto:
	./plugins/internal/proto/gen.sh

# proto-check fails when the committed generated code is out of date.
proto-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	./plugins/internal/proto/gen.sh "$$tmp/out" && \
	for f in resource.pb.go resource_grpc.pb.go; do \
		diff -u plugins/internal/proto/sftresourcev1/$$f "$$tmp/out/sftresourcev1/$$f" || \
		{ echo "proto-check: generated code is out of date: run make proto" >&2; exit 1; }; \
	done

# lint checks DESIGN.md's import layers and runs staticcheck (pinned; go run
# builds it into the module cache, nothing is installed).
lint:
	go run ./internal/tools/layercheck ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
