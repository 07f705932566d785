.PHONY: proto proto-check

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
